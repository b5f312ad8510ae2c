using System;
using System.Globalization;

namespace IoreqSdk.Xenstore;

/// <summary>Xenstore path rules (docs/misc/xenstore.txt), shared by the service and the simulated xenstore.</summary>
public static class XenStorePaths
{
    /// <summary>XENSTORE_ABS_PATH_MAX (xs_wire.h): the longest absolute path xenstored accepts.</summary>
    public const int MaxAbsolutePathLength = 3072;

    /// <summary>XENSTORE_PAYLOAD_MAX (xs_wire.h): the most bytes a value (a whole message) may carry.</summary>
    public const int MaxValueLength = 4096;

    /// <summary>The watch fired when a domain is released (has died and been cleaned up).</summary>
    public const string ReleaseDomain = "@releaseDomain";

    /// <summary>The watch fired when a domain is introduced to xenstored.</summary>
    public const string IntroduceDomain = "@introduceDomain";

    /// <summary><c>/local/domain/&lt;id&gt;</c>.</summary>
    public static string DomainPath(ushort domain) => "/local/domain/" + domain.ToString(CultureInfo.InvariantCulture);

    /// <summary><paramref name="path"/> made absolute: a relative path is under <paramref name="domain"/>'s home.</summary>
    public static string Resolve(string path, ushort domain) =>
        path.Length > 0 && (path[0] == '/' || path[0] == '@') ? path : DomainPath(domain) + "/" + path;

    /// <summary>
    /// Whether <paramref name="path"/> is a well-formed node path: absolute after resolution, no empty component, no
    /// trailing slash (except the root), only the characters xenstored allows (letters, digits, <c>-/_@</c>), not too long.
    /// </summary>
    public static bool IsValid(string path)
    {
        if (path.Length == 0 || path.Length > MaxAbsolutePathLength)
        {
            return false;
        }

        if (path[0] == '@')
        {
            return path == ReleaseDomain || path == IntroduceDomain;
        }

        if (path[0] != '/' || (path.Length > 1 && path[path.Length - 1] == '/'))
        {
            return false;
        }

        for (int i = 1; i < path.Length; i++)
        {
            char c = path[i];
            bool allowed = c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '-' or '/' or '_' or '@';
            if (!allowed || (c == '/' && path[i - 1] == '/'))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Whether <paramref name="path"/> is <paramref name="ancestor"/> or lies under it.</summary>
    public static bool IsSelfOrDescendant(string path, string ancestor)
    {
        if (ancestor == "/")
        {
            return path.Length > 0 && path[0] == '/';
        }

        return path.StartsWith(ancestor, StringComparison.Ordinal)
            && (path.Length == ancestor.Length || path[ancestor.Length] == '/');
    }

    /// <summary>The parent of an absolute path (the root's parent is the root).</summary>
    public static string Parent(string path)
    {
        int slash = path.LastIndexOf('/');
        return slash <= 0 ? "/" : path.Substring(0, slash);
    }

    /// <summary><paramref name="parent"/>/<paramref name="child"/>.</summary>
    public static string Combine(string parent, string child) => parent == "/" ? "/" + child : parent + "/" + child;
}
