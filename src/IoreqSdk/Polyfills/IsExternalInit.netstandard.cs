// Lets netstandard2.0 code use init-only setters and records. Compiled for netstandard2.0 only.
namespace System.Runtime.CompilerServices;

internal static class IsExternalInit
{
}
