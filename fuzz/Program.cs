using System;
using System.IO;
using IoreqSdk.Fuzzing;
using SharpFuzz;

// IoreqSdk.Fuzz TARGET           under afl-fuzz: the persistent, in-process fork server of SharpFuzz.
// IoreqSdk.Fuzz TARGET FILE...   replays inputs (a crash found, a corpus) and says which fail.
// IoreqSdk.Fuzz TARGET --random N  N random inputs without AFL (a quick sanity run of a harness).
// IoreqSdk.Fuzz --list           the targets.
if (args.Length == 1 && args[0] == "--list")
{
    foreach (string name in FuzzTargets.Names)
    {
        Console.WriteLine(name);
    }

    return 0;
}

if (args.Length == 0 || !FuzzTargets.All.TryGetValue(args[0], out Action<byte[]>? target))
{
    Console.Error.WriteLine($"usage: IoreqSdk.Fuzz TARGET [FILE...]; targets: {string.Join(", ", FuzzTargets.Names)}");
    return 2;
}

if (args.Length == 3 && args[1] == "--random")
{
    // Random inputs without AFL (a quick sanity run of a harness): the first failure's input is written to disk.
    var random = new Random(20);
    int runs = int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture);
    var clock = System.Diagnostics.Stopwatch.StartNew();
    for (int i = 0; i < runs; i++)
    {
        var input = new byte[random.Next(1, 400)];
        random.NextBytes(input);
        try
        {
            target(input);
        }
        catch (Exception e)
        {
            string name = $"random-failure-{args[0]}-{i}";
            File.WriteAllBytes(name, input);
            Console.WriteLine($"FAIL  run {i} ({name}): {e}");
            return 1;
        }
    }

    Console.WriteLine($"{runs} random inputs passed, {runs / clock.Elapsed.TotalSeconds:F0}/s");
    return 0;
}

if (args.Length > 1)
{
    int failed = 0;
    for (int i = 1; i < args.Length; i++)
    {
        try
        {
            target(File.ReadAllBytes(args[i]));
            Console.WriteLine($"ok    {args[i]}");
        }
        catch (Exception e)
        {
            failed++;
            Console.WriteLine($"FAIL  {args[i]}: {e}");
        }
    }

    return failed == 0 ? 0 : 1;
}

// Under afl-fuzz the program's output goes nowhere: FUZZ_FAILURE_LOG (fuzz/run.sh sets it) keeps each failure's text,
// with the input's hash, for triage.
string? failureLog = Environment.GetEnvironmentVariable("FUZZ_FAILURE_LOG");
Fuzzer.Run(stream =>
{
    using var copy = new MemoryStream();
    stream.CopyTo(copy);
    byte[] input = copy.ToArray();
    try
    {
        target(input);
    }
    catch (Exception e) when (failureLog is not null && Log(failureLog, input, e))
    {
        throw;
    }
});
return 0;

static bool Log(string path, byte[] input, Exception e)
{
    string hash = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(input), 0, 8);
    File.AppendAllText(path, $"--- {DateTime.UtcNow:O} input {hash} ({input.Length} bytes)\n{e}\n");
    return false;
}
