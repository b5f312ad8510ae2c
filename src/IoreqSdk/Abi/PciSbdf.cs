using System;
using System.Globalization;

namespace IoreqSdk.Abi;

/// <summary>
/// A PCI function's segment, bus, device and function, in Xen's 32-bit encoding
/// <c>XEN_DMOP_PCI_SBDF(s,b,d,f) = (s &lt;&lt; 16) | (b &lt;&lt; 8) | (d &lt;&lt; 3) | f</c> (<c>xen/hvm/dm_op.h</c>).
/// </summary>
/// <remarks>
/// The same encoding names a function in a PCI range registration and forms the upper half of the
/// address of an <see cref="IoreqType.PciConfig"/> request (see <see cref="PciConfigAddress"/>).
/// </remarks>
public readonly struct PciSbdf : IEquatable<PciSbdf>
{
    /// <summary>The bit position of the segment in <see cref="Value"/>.</summary>
    public const int SegmentShift = 16;

    /// <summary>The bit position of the bus in <see cref="Value"/>.</summary>
    public const int BusShift = 8;

    /// <summary>The bit position of the device in <see cref="Value"/>.</summary>
    public const int DeviceShift = 3;

    /// <summary>The largest device number (5 bits).</summary>
    public const int MaxDevice = 31;

    /// <summary>The largest function number (3 bits).</summary>
    public const int MaxFunction = 7;

    /// <summary>Creates an SBDF from its parts.</summary>
    /// <param name="segment">The PCI segment (domain).</param>
    /// <param name="bus">The bus number.</param>
    /// <param name="device">The device number, 0–31.</param>
    /// <param name="function">The function number, 0–7.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="device"/> or <paramref name="function"/> is out of range.</exception>
    public PciSbdf(ushort segment, byte bus, int device, int function)
    {
        if ((uint)device > MaxDevice)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(device), "A PCI device number is 0 to 31.");
        }

        if ((uint)function > MaxFunction)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(function), "A PCI function number is 0 to 7.");
        }

        Value = ((uint)segment << SegmentShift) | ((uint)bus << BusShift) | ((uint)device << DeviceShift) | (uint)function;
    }

    private PciSbdf(uint value) => Value = value;

    /// <summary>The encoded value, as Xen's <c>XEN_DMOP_PCI_SBDF</c> forms it.</summary>
    public uint Value { get; }

    /// <summary>The segment (bits 16–31).</summary>
    public ushort Segment => (ushort)(Value >> SegmentShift);

    /// <summary>The bus (bits 8–15).</summary>
    public byte Bus => (byte)(Value >> BusShift);

    /// <summary>The device (bits 3–7).</summary>
    public int Device => (int)(Value >> DeviceShift) & MaxDevice;

    /// <summary>The function (bits 0–2).</summary>
    public int Function => (int)Value & MaxFunction;

    /// <summary>The bus, device and function without the segment (a 16-bit BDF).</summary>
    public ushort Bdf => (ushort)Value;

    /// <summary>Interprets an encoded value. Every 32-bit value is a valid SBDF.</summary>
    /// <param name="value">A value in Xen's encoding.</param>
    /// <returns>The SBDF.</returns>
    public static PciSbdf FromValue(uint value) => new(value);

    /// <inheritdoc/>
    public bool Equals(PciSbdf other) => Value == other.Value;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is PciSbdf other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => (int)Value;

    /// <summary>Formats as <c>ssss:bb:dd.f</c>, as <c>lspci -D</c> does.</summary>
    /// <returns>The text form.</returns>
    public override string ToString() =>
        string.Format(CultureInfo.InvariantCulture, "{0:x4}:{1:x2}:{2:x2}.{3}", Segment, Bus, Device, Function);

    /// <summary>
    /// Parses <c>ssss:bb:dd.f</c> or <c>bb:dd.f</c> (hexadecimal segment, bus and device; a decimal function), the
    /// forms <c>lspci</c> and <c>xl</c> print.
    /// </summary>
    /// <param name="text">The text.</param>
    /// <param name="value">The SBDF, when the text is one.</param>
    /// <returns>Whether the text is a valid SBDF.</returns>
    public static bool TryParse(string? text, out PciSbdf value)
    {
        value = default;
        if (text is null)
        {
            return false;
        }

        string[] parts = text.Split(':');
        if (parts.Length is < 2 or > 3)
        {
            return false;
        }

        int dot = parts[parts.Length - 1].IndexOf('.');
        if (dot < 0)
        {
            return false;
        }

        string segmentText = parts.Length == 3 ? parts[0] : "0";
        string busText = parts[parts.Length - 2];
        string deviceText = parts[parts.Length - 1].Substring(0, dot);
        string functionText = parts[parts.Length - 1].Substring(dot + 1);
        const NumberStyles Hex = NumberStyles.AllowHexSpecifier;
        if (segmentText.Length is 0 or > 4 || busText.Length is 0 or > 2 || deviceText.Length is 0 or > 2 || functionText.Length != 1
            || !ushort.TryParse(segmentText, Hex, CultureInfo.InvariantCulture, out ushort segment)
            || !byte.TryParse(busText, Hex, CultureInfo.InvariantCulture, out byte bus)
            || !int.TryParse(deviceText, Hex, CultureInfo.InvariantCulture, out int device)
            || !int.TryParse(functionText, NumberStyles.None, CultureInfo.InvariantCulture, out int function)
            || device > MaxDevice || function > MaxFunction)
        {
            return false;
        }

        value = new PciSbdf(segment, bus, device, function);
        return true;
    }

    /// <summary>Compares two SBDFs.</summary>
    /// <param name="left">The first.</param>
    /// <param name="right">The second.</param>
    /// <returns>Whether they name the same function.</returns>
    public static bool operator ==(PciSbdf left, PciSbdf right) => left.Equals(right);

    /// <summary>Compares two SBDFs.</summary>
    /// <param name="left">The first.</param>
    /// <param name="right">The second.</param>
    /// <returns>Whether they name different functions.</returns>
    public static bool operator !=(PciSbdf left, PciSbdf right) => !left.Equals(right);
}
