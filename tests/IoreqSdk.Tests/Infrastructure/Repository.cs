using System;
using System.IO;
using NUnit.Framework;

namespace IoreqSdk.Tests.Infrastructure;

/// <summary>The repository the tests were built from, for the tests that read its sources.</summary>
internal static class Repository
{
    /// <summary>The repository's root: the first folder above the test's own with IoreqSdk.sln in it.</summary>
    public static string Root()
    {
        string root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "IoreqSdk.sln")))
        {
            root = Path.GetDirectoryName(root.TrimEnd(Path.DirectorySeparatorChar)) ?? throw new AssertionException("the repository root (IoreqSdk.sln) is not above the test's directory");
        }

        return root.TrimEnd(Path.DirectorySeparatorChar);
    }
}
