using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;

// Workstation, non-concurrent GC (Garnet's reasoning: server GC's allocation counter over-counts per-heap budgets),
// and TieredPGO off so runs are comparable. Always pass --filter: without it and without stdin BDN runs nothing.
IConfig config = DefaultConfig.Instance
    .AddDiagnoser(MemoryDiagnoser.Default)
    .AddJob(Job.Default.WithGcServer(false).WithGcConcurrent(false).WithEnvironmentVariable("DOTNET_TieredPGO", "0").AsDefault())
    .AddColumn(StatisticColumn.Median);
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);

/// <summary>The entry point's type, for BenchmarkSwitcher.</summary>
internal sealed partial class Program
{
}
