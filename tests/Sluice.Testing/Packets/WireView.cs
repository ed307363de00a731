using System.Buffers.Binary;
using System.Net;

namespace Sluice.Testing.Packets;

/// <summary>The addresses, ports and TCP fields of a frame as it left the program.</summary>
public sealed record WireView(IPAddress Source, IPAddress Destination, ushort SourcePort, ushort DestinationPort, byte TcpFlags, uint Sequence)
{
    public static WireView Of(ReadOnlySpan<byte> frame)
    {
        var ip = FrameChecks.Ipv4Offset(frame);
        if (ip < 0)
        {
            throw new ArgumentException("not an IPv4 frame", nameof(frame));
        }
        var l4 = ip + (frame[ip] & 0x0f) * 4;
        var isTcp = frame[ip + 9] == PacketBuilder.Tcp;
        return new WireView(
            new IPAddress(frame.Slice(ip + 12, 4)), new IPAddress(frame.Slice(ip + 16, 4)),
            BinaryPrimitives.ReadUInt16BigEndian(frame[l4..]), BinaryPrimitives.ReadUInt16BigEndian(frame[(l4 + 2)..]),
            isTcp ? frame[l4 + 13] : (byte)0, isTcp ? BinaryPrimitives.ReadUInt32BigEndian(frame[(l4 + 4)..]) : 0);
    }

    public string Endpoint => $"{Destination}:{DestinationPort}";
}
