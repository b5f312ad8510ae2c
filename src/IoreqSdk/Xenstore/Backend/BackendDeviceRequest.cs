using System;
using System.Collections.Generic;
using System.Globalization;
using IoreqSdk.Hypervisor;
using IoreqSdk.Server;
using Microsoft.Extensions.Logging;

namespace IoreqSdk.Xenstore.Backend;

/// <summary>One device to build: where its keys came from, the keys themselves, and the ioreq server to put it on.</summary>
public sealed class BackendDeviceRequest
{
    internal BackendDeviceRequest(string type, ushort frontendDomain, uint deviceId, string backendPath, IReadOnlyDictionary<string, string> keys, IoreqServer server, GuestArchitecture architecture, int vcpuCount, ILogger logger)
    {
        VcpuCount = vcpuCount;
        Type = type;
        FrontendDomain = frontendDomain;
        DeviceId = deviceId;
        BackendPath = backendPath;
        Keys = keys;
        Server = server;
        Architecture = architecture;
        Logger = logger;
    }

    /// <summary>The device type (<see cref="IBackendDeviceFactory.Type"/>).</summary>
    public string Type { get; }

    /// <summary>The guest the device is for.</summary>
    public ushort FrontendDomain { get; }

    /// <summary>The device's id under its frontend (libxl's devid).</summary>
    public uint DeviceId { get; }

    /// <summary>The device's backend directory in xenstore.</summary>
    public string BackendPath { get; }

    /// <summary>Every key of the backend directory and its value, as read.</summary>
    public IReadOnlyDictionary<string, string> Keys { get; }

    /// <summary>The guest's new ioreq server, not started: add the device to it.</summary>
    public IoreqServer Server { get; }

    /// <summary>The guest's architecture.</summary>
    public GuestArchitecture Architecture { get; }

    /// <summary>The guest's vCPU count (a disk's queue count follows it).</summary>
    public int VcpuCount { get; }

    /// <summary>The device's logger (its scope names the domain and device).</summary>
    public ILogger Logger { get; }

    /// <summary>The value of <paramref name="key"/>.</summary>
    /// <exception cref="BackendDeviceException">The key is missing or empty.</exception>
    public string Require(string key) =>
        Keys.TryGetValue(key, out string? value) && value.Length > 0 ? value : throw new BackendDeviceException($"the key '{key}' is missing");

    /// <summary>The value of <paramref name="key"/> as an unsigned number (decimal, as libxl writes, or 0x-prefixed hex), at most <paramref name="maximum"/>.</summary>
    /// <exception cref="BackendDeviceException">The key is missing, not a number, or too large.</exception>
    public ulong RequireNumber(string key, ulong maximum = ulong.MaxValue)
    {
        string text = Require(key);
        return TryParseNumber(text, out ulong value) && value <= maximum
            ? value
            : throw new BackendDeviceException($"the key '{key}' is '{Shorten(text)}', not a number up to {maximum.ToString(CultureInfo.InvariantCulture)}");
    }

    /// <summary>Parses a decimal or 0x-prefixed hexadecimal number with nothing else around it.</summary>
    public static bool TryParseNumber(string text, out ulong value)
    {
        value = 0;
        if (text is null || text.Length == 0 || text.Length > 20)
        {
            return false;
        }

        if (text.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
        {
            if (text.Length == 2 || text.Length > 18)
            {
                return false;
            }

            for (int i = 2; i < text.Length; i++)
            {
                int digit = text[i] switch
                {
                    >= '0' and <= '9' => text[i] - '0',
                    >= 'a' and <= 'f' => text[i] - 'a' + 10,
                    >= 'A' and <= 'F' => text[i] - 'A' + 10,
                    _ => -1,
                };
                if (digit < 0)
                {
                    value = 0;
                    return false;
                }

                value = (value << 4) | (uint)digit;
            }

            return true;
        }

        foreach (char c in text)
        {
            if (c is < '0' or > '9')
            {
                return false;
            }
        }

        return ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);
    }

    /// <summary>A value from xenstore (hostile: any length) cut to 64 characters for a log line.</summary>
    public static string Shorten(string text) => text.Length <= 64 ? text : text.Remove(64) + "…";
}
