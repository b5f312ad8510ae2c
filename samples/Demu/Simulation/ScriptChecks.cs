using System.IO;

namespace Demu.Simulation;

/// <summary>A scripted driver's steps as the transcript shows them: each check printed and counted, notes printed.</summary>
internal sealed class ScriptChecks
{
    private readonly TextWriter _transcript;

    public ScriptChecks(TextWriter transcript) => _transcript = transcript;

    public int Passed { get; private set; }

    public int Failed { get; private set; }

    /// <summary>Prints a step and counts it.</summary>
    public void Check(string step, bool ok, string detail)
    {
        if (ok)
        {
            Passed++;
        }
        else
        {
            Failed++;
        }

        _transcript.WriteLine($"  driver    {(ok ? "ok" : "FAIL"),-4}  {step,-21} {detail}");
    }

    /// <summary>Prints a step that checks nothing.</summary>
    public void Note(string step, string detail) => _transcript.WriteLine($"  driver          {step,-21} {detail}");
}
