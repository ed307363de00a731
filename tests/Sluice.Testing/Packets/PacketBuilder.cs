using System.Buffers.Binary;

namespace Sluice.Testing.Packets;

/// <summary>Builds Ethernet/802.1Q/IPv4/TCP|UDP frames with checksums computed from scratch.</summary>
public static class PacketBuilder
{
    public const byte Tcp = 6;
    public const byte Udp = 17;
    public const byte Icmp = 1;

    /// <summary>What an ICMP error quotes of a packet: its IPv4 header and the first 8 bytes after it.</summary>
    public static byte[] Quote(PacketSpec packet)
    {
        var frame = Build(packet);
        var ip = FrameChecks.Ipv4Offset(frame);
        return frame[ip..(ip + (frame[ip] & 0x0f) * 4 + 8)];
    }

    public static byte[] Build(PacketSpec spec)
    {
        if (spec.RawBytes is not null)
        {
            return spec.RawBytes;
        }
        var l4 = BuildL4(spec);
        var flagsAndOffset = spec.FlagsAndOffset;
        if (spec.Fragment is { } part)
        {
            l4 = l4[part.Offset..Math.Min(l4.Length, part.Offset + part.Length)];
            flagsAndOffset = (ushort)((part.More ? 0x2000 : 0) | (part.Offset / 8));
        }
        var ipHeaderLength = 20 + spec.IpOptions.Length;
        var ip = new byte[ipHeaderLength + l4.Length];
        var ihl = spec.IhlOverride ?? (byte)(ipHeaderLength / 4);
        ip[0] = (byte)(((spec.IpVersionOverride ?? 4) << 4) | (ihl & 0x0f));
        ip[1] = spec.Tos;
        BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(2), (ushort)(ip.Length + spec.TotalLengthAdjust));
        BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(4), spec.Identification);
        BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(6), flagsAndOffset);
        ip[8] = spec.Ttl;
        ip[9] = spec.Protocol;
        spec.Source.GetAddressBytes().CopyTo(ip, 12);
        spec.Destination.GetAddressBytes().CopyTo(ip, 16);
        spec.IpOptions.CopyTo(ip, 20);
        var headerChecksum = InternetChecksum.Compute(ip.AsSpan(0, ipHeaderLength));
        BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(10), spec.BadIpChecksum ? (ushort)(headerChecksum ^ 0x5a5a) : headerChecksum);
        l4.CopyTo(ip, ipHeaderLength);

        var frame = new List<byte>();
        frame.AddRange(spec.DestinationMac);
        frame.AddRange(spec.SourceMac);
        foreach (var tci in spec.VlanTags)
        {
            frame.Add((byte)(spec.VlanEtherType >> 8));
            frame.Add((byte)spec.VlanEtherType);
            frame.Add((byte)(tci >> 8));
            frame.Add((byte)tci);
        }
        frame.Add(0x08);
        frame.Add(0x00);
        frame.AddRange(ip);
        frame.AddRange(new byte[spec.TrailingPadding]);
        var bytes = frame.ToArray();
        return spec.TruncateTo is { } length ? bytes[..length] : bytes;
    }

    private static byte[] BuildL4(PacketSpec spec)
    {
        var source = spec.Source.GetAddressBytes();
        var destination = spec.Destination.GetAddressBytes();
        switch (spec.Protocol)
        {
            case Tcp:
            {
                var tcp = new byte[20 + spec.Payload.Length];
                BinaryPrimitives.WriteUInt16BigEndian(tcp, spec.SourcePort);
                BinaryPrimitives.WriteUInt16BigEndian(tcp.AsSpan(2), spec.DestinationPort);
                BinaryPrimitives.WriteUInt32BigEndian(tcp.AsSpan(4), spec.TcpSequence);
                BinaryPrimitives.WriteUInt32BigEndian(tcp.AsSpan(8), spec.TcpAcknowledgement);
                tcp[12] = 5 << 4;
                tcp[13] = spec.TcpFlags;
                BinaryPrimitives.WriteUInt16BigEndian(tcp.AsSpan(14), 64240);
                spec.Payload.CopyTo(tcp, 20);
                var pseudo = InternetChecksum.PseudoHeader(source, destination, Tcp, tcp.Length);
                BinaryPrimitives.WriteUInt16BigEndian(tcp.AsSpan(16),
                    spec.PartialChecksum ? InternetChecksum.Partial(pseudo) : InternetChecksum.Compute(tcp, pseudo));
                return tcp;
            }
            case Udp:
            {
                var udp = new byte[8 + spec.Payload.Length];
                BinaryPrimitives.WriteUInt16BigEndian(udp, spec.SourcePort);
                BinaryPrimitives.WriteUInt16BigEndian(udp.AsSpan(2), spec.DestinationPort);
                BinaryPrimitives.WriteUInt16BigEndian(udp.AsSpan(4), (ushort)udp.Length);
                spec.Payload.CopyTo(udp, 8);
                if (!spec.UdpNoChecksum)
                {
                    var pseudo = InternetChecksum.PseudoHeader(source, destination, Udp, udp.Length);
                    var check = spec.PartialChecksum ? InternetChecksum.Partial(pseudo) : InternetChecksum.Compute(udp, pseudo);
                    BinaryPrimitives.WriteUInt16BigEndian(udp.AsSpan(6), check == 0 ? (ushort)0xffff : check);
                }
                return udp;
            }
            default:
            {
                // ICMP (an echo request unless told otherwise), or any other protocol's payload as given.
                var body = new byte[8 + spec.Payload.Length];
                body[0] = spec.IcmpType;
                body[1] = spec.IcmpCode;
                BinaryPrimitives.WriteUInt32BigEndian(body.AsSpan(4), spec.IcmpRest);
                spec.Payload.CopyTo(body, 8);
                BinaryPrimitives.WriteUInt16BigEndian(body.AsSpan(2), InternetChecksum.Compute(body));
                return body;
            }
        }
    }
}
