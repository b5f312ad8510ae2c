using System;
using Demu.Devices;
using NUnit.Framework;

namespace IoreqSdk.Tests.Samples;

/// <summary>The samples' devices refuse impossible settings where they are built, as the SDK's types do.</summary>
[TestFixture]
public sealed class SampleValidationTests
{
    [TestCase(0)]
    [TestCase(-1)]
    [TestCase(65)]
    public void EduRefusesADmaWidthOutsideOneToSixtyFourBits(int bits)
    {
        Assert.That(() => new EduDevice(bits), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("1 to 64 address bits"));
    }
}
