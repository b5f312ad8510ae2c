using System;
using System.Globalization;
using System.IO;
using System.Runtime.InteropServices;
using IoreqSdk.Virtio.Mmio;
using IoreqSdk.Xenstore.Backend;

namespace IoreqSdk.Fuzzing;

/// <summary>
/// The words the xenstore target speaks: the backend service's real keys and path components next to wrong ones, and a
/// dictionary of values that mean something to it (states, numbers in and out of range in decimal and hex, slots, SPIs,
/// BDFs, transports, device types, disk paths that exist, do not, or are not regular files) next to empty, huge and
/// random ones. The fuzzer picks among them by index, so a mutation moves between meaningful values, not just bytes.
/// </summary>
internal static partial class XenstoreVocabulary
{
    /// <summary>Frontend directory names: guests 1 (Arm64) and 2 (x86) with a hypervisor, 3 with a home but no hypervisor, 9 with neither, and names that are not domains or are reserved.</summary>
    public static readonly string[] Frontends = ["1", "2", "3", "9", "01", "65535", "32752", "x1"];

    /// <summary>The domains the target creates, introduces, releases and destroys.</summary>
    public static readonly ushort[] Domains = [1, 2, 3, 9];

    /// <summary>Device ids: libxl's xvda, small ones, one past 32 bits, not a number.</summary>
    public static readonly string[] DeviceIds = ["51712", "0", "1", "4294967296", "a"];

    /// <summary>Backend directory kinds: the two the service watches and one it does not.</summary>
    public static readonly string[] Kinds = [XenstoreBackendService.VirtioDiskKind, XenstoreBackendService.SdkKind, "vbd"];

    /// <summary>The keys of a device directory the service and its factories read, and one they do not.</summary>
    public static readonly string[] Keys =
    [
        "state", "online", "frontend", "frontend-id", "type", "params", "mode", "transport", "base", "irq", "bdf",
        "specification", XenstoreBackendService.IoreqServerKey, "backend", "junk",
    ];

    /// <summary>Backend and frontend states, and values that are not states.</summary>
    public static readonly string[] States = ["1", "2", "3", "4", "5", "6", "0", "7", "8", "", "0x4", "01", "-1", " 5", "18446744073709551616"];

    private static readonly string[] s_fixedValues =
    [
        // Numbers in and out of range, decimal and hex, and not quite numbers.
        "0", "1", "2", "5", "6", "33", "34", "43", "44", "32", "0x21", "0x2b", "01", " 1", "1 ", "-1", "0x", "0xg",
        "18446744073709551615", "18446744073709551616", "0xffffffffffffffff", "0x10000000000000000", "99999999999999999999",

        // virtio-mmio slots: the window's first two, its last, one past it, misaligned, below it; decimal and hex.
        "33554432", "0x2000000", "0x2000200", "0x20ffe00", "0x2100000", "0x2000100", "0x1fffe00",

        // PCI addresses: good ones, another bus, past the slots or functions, malformed.
        "0000:00:05.0", "0000:00:1f.7", "0001:00:05.0", "0000:01:05.0", "0000:00:20.0", "0000:00:05.8", "zzzz:00:05.0", "0000:00:05.0.1", "0:0:5.0",

        // Transports, modes, device types, specifications.
        "mmio", "pci", "MMIO", "w", "r", "rw", "virtio-blk", "virtio-rng", XenstoreBackendService.VirtioDiskKind, "virtio", "xen", "unknown",

        // Frontend paths: the real one's shape, relative, the root, a special, not a path.
        "/local/domain/1/device/virtio_disk/51712", "/local/domain/2/device/virtio_disk/51712", "/local/domain/9/device/virtio_disk/0",
        "device/virtio_disk/51712", "/", "@releaseDomain", "//", "/local/domain/1/device/virtio_disk/51712/", "not a path",

        // Empty, and the longest values xenstore takes (and one past: the store refuses it).
        string.Empty, new string('7', 64), new string('9', 4096), new string('a', 4097),
    ];

    private static readonly object s_gate = new();
    private static string? s_directory;
    private static string[] s_diskPaths = [];

    /// <summary>How many values <see cref="Value"/> can pick (the dictionary, the disk paths, a frontend path made to measure, random bytes).</summary>
    public static int ValueCount => s_fixedValues.Length + DiskPaths.Length + 2;

    /// <summary>
    /// Disk paths under a directory made once per process: an image, an empty file, a directory, a FIFO, a symbolic link to
    /// the image, a file that does not exist, a path through a file, a relative path, and the null device.
    /// </summary>
    public static string[] DiskPaths
    {
        get
        {
            lock (s_gate)
            {
                if (s_directory is null)
                {
                    Prepare();
                }

                return s_diskPaths;
            }
        }
    }

    /// <summary>The image every well-formed disk uses.</summary>
    public static string Image => DiskPaths[0];

    /// <summary>A FIFO (a named pipe): "a file" to File.Exists, and no disk.</summary>
    public static string Fifo => DiskPaths[3];

    /// <summary>A value from the dictionary, a disk path, the frontend path of <paramref name="frontend"/>/<paramref name="deviceId"/>, or random bytes.</summary>
    public static string Value(ref FuzzInput input, string frontend, string deviceId)
    {
        int pick = input.U8() % ValueCount;
        if (pick < s_fixedValues.Length)
        {
            return s_fixedValues[pick];
        }

        pick -= s_fixedValues.Length;
        if (pick < DiskPaths.Length)
        {
            return DiskPaths[pick];
        }

        return pick == DiskPaths.Length ? FrontendPath(frontend, deviceId) : RandomText(ref input);
    }

    /// <summary>Up to 31 characters from the input's bytes: NUL, slashes, non-ASCII and all.</summary>
    public static string RandomText(ref FuzzInput input)
    {
        int length = input.Choose(32);
        var chars = new char[length];
        for (int i = 0; i < length; i++)
        {
            chars[i] = (char)input.U8();
        }

        return new string(chars);
    }

    /// <summary>A name for a key or path component: one of <paramref name="known"/>, or (one time in eight) random.</summary>
    public static string Name(ref FuzzInput input, string[] known)
    {
        byte b = input.U8();
        return (b & 0xE0) == 0xE0 ? RandomText(ref input) : known[b % known.Length];
    }

    /// <summary>The backend directory of a device.</summary>
    public static string BackendPath(string kind, string frontend, string deviceId) => "/local/domain/0/backend/" + kind + "/" + frontend + "/" + deviceId;

    /// <summary>Where libxl puts a virtio disk's frontend directory.</summary>
    public static string FrontendPath(string frontend, string deviceId) => "/local/domain/" + frontend + "/device/" + XenstoreBackendService.VirtioDiskKind + "/" + deviceId;

    /// <summary>The virtio-mmio slot <paramref name="slot"/> of Xen's Arm64 window, and its SPI.</summary>
    public static (string Base, string Irq) MmioSlot(int slot) =>
        ("0x" + (VirtioMmioTransport.Arm64WindowBase + ((ulong)slot * VirtioMmioTransport.Size)).ToString("x", CultureInfo.InvariantCulture),
         (VirtioMmioTransport.Arm64FirstSpi + (uint)slot).ToString(CultureInfo.InvariantCulture));

    private static void Prepare()
    {
        string directory = Path.Combine(Path.GetTempPath(), "ioreqsdk-fuzz-xenstore-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        Directory.CreateDirectory(directory);
        string image = Path.Combine(directory, "disk.img");
        File.WriteAllBytes(image, new byte[64 << 10]);
        string empty = Path.Combine(directory, "empty.img");
        File.WriteAllBytes(empty, []);
        string folder = Path.Combine(directory, "folder");
        Directory.CreateDirectory(folder);
        string fifo = Path.Combine(directory, "fifo");
        if (!File.Exists(fifo) && MakeFifo(fifo, 0x180) != 0)
        {
            throw new InvalidOperationException($"mkfifo {fifo} failed ({Marshal.GetLastPInvokeError()})");
        }

        string link = Path.Combine(directory, "link.img");
        if (!File.Exists(link))
        {
            File.CreateSymbolicLink(link, image);
        }

        s_diskPaths = [image, empty, folder, fifo, link, Path.Combine(directory, "missing.img"), Path.Combine(image, "inside"), "disk.img", "/dev/null"];
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                Directory.Delete(directory, recursive: true);
            }
            catch (IOException)
            {
                // Left in the temporary directory: harmless.
            }
        };
        s_directory = directory;
    }

    [LibraryImport("libc", EntryPoint = "mkfifo", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int MakeFifo(string path, uint mode);
}
