using NUnit.Framework;

namespace IoreqSdk.Tests.Samples;

/// <summary>
/// demu's side of the security review (issue 13): the host's streams never hold the loop. The devices' side (edu's
/// factorial off the loop, the serial port's bounded host queue) is tested with the devices, in Devices/.
/// </summary>
[TestFixture]
public sealed class SampleHardeningTests
{
    // The class "long work on the loop", host side: demu wrote the guest's serial output to stdout on the loop, so a
    // stdout nobody reads (a full pipe) blocked the loop inside the UART's transmit, and every access with it.
    [Test]
    public void SerialOutputToAStreamThatBlocksNeverHoldsTheCaller()
    {
        using var gate = new System.Threading.ManualResetEventSlim();
        using var stream = new BlockingStream(gate);
        using (var pump = new Demu.SerialOutputPump(stream))
        {
            for (int i = 0; i < Demu.SerialOutputPump.Capacity + 100; i++)
            {
                pump.Write((byte)'x');   // would block at the first byte if written through
            }

            Assert.That(pump.Dropped, Is.GreaterThanOrEqualTo(99), "beyond the bound, bytes are dropped and counted");
            gate.Set();
        }

        Assert.That(stream.Written, Is.GreaterThan(0));
    }

    private sealed class BlockingStream : System.IO.Stream
    {
        private readonly System.Threading.ManualResetEventSlim _gate;

        public BlockingStream(System.Threading.ManualResetEventSlim gate) => _gate = gate;

        public long Written { get; private set; }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => Written;

        public override long Position { get => Written; set => throw new System.NotSupportedException(); }

        public override void Flush() => _gate.Wait();

        public override int Read(byte[] buffer, int offset, int count) => throw new System.NotSupportedException();

        public override long Seek(long offset, System.IO.SeekOrigin origin) => throw new System.NotSupportedException();

        public override void SetLength(long value) => throw new System.NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count)
        {
            _gate.Wait();
            Written += count;
        }

        public override void WriteByte(byte value)
        {
            _gate.Wait();
            Written++;
        }
    }
}
