using System;
using System.Text;

namespace IoreqSdk;

/// <summary>Text for and from C functions: NUL-terminated UTF-8, as libc, libdl and libxenstore take and give it.</summary>
internal static class NativeText
{
    /// <summary>
    /// <paramref name="text"/> as UTF-8 with a terminating NUL, or <see langword="false"/> if it holds a NUL itself:
    /// the C side would stop there and act on a prefix (another path, another key) — the caller refuses it instead.
    /// </summary>
    public static bool TryEncodeTerminated(string text, out byte[] bytes)
    {
        if (text.AsSpan().IndexOf('\0') >= 0)
        {
            bytes = [];
            return false;
        }

        bytes = new byte[Encoding.UTF8.GetByteCount(text) + 1];
        _ = Encoding.UTF8.GetBytes(text, 0, text.Length, bytes, 0);
        return true;
    }

    /// <summary>The UTF-8 text at <paramref name="text"/> up to its terminating NUL.</summary>
    public static unsafe string DecodeTerminated(byte* text)
    {
        int length = 0;
        while (text[length] != 0)
        {
            length++;
        }

        return Encoding.UTF8.GetString(text, length);
    }
}
