using System.Buffers.Binary;

namespace Sluice.Testing.Packets;

/// <summary>Verifies a frame's IPv4 and TCP/UDP checksums from scratch.</summary>
public static class FrameChecks
{
    /// <summary>Offset of the IPv4 header, or -1 if the frame does not carry a full one.</summary>
    public static int Ipv4Offset(ReadOnlySpan<byte> frame)
    {
        if (frame.Length < 14) return -1;
        var offset = 12;
        var type = BinaryPrimitives.ReadUInt16BigEndian(frame[offset..]);
        if (type == 0x8100)
        {
            if (frame.Length < 18) return -1;
            offset += 4;
            type = BinaryPrimitives.ReadUInt16BigEndian(frame[offset..]);
        }
        return type == 0x0800 && frame.Length >= offset + 2 + 20 ? offset + 2 : -1;
    }

    /// <summary>True if the IPv4 header and (for unfragmented TCP/UDP/ICMP) the L4 checksum verify.</summary>
    public static bool ChecksumsValid(ReadOnlySpan<byte> frame)
    {
        var ip = Ipv4Offset(frame);
        if (ip < 0) return false;
        var headerLength = (frame[ip] & 0x0f) * 4;
        var totalLength = BinaryPrimitives.ReadUInt16BigEndian(frame[(ip + 2)..]);
        if (headerLength < 20 || totalLength < headerLength || ip + totalLength > frame.Length) return false;
        if (InternetChecksum.Compute(frame.Slice(ip, headerLength)) != 0) return false;
        var protocol = frame[ip + 9];
        var fragmented = (BinaryPrimitives.ReadUInt16BigEndian(frame[(ip + 6)..]) & 0x3fff) != 0;
        var l4 = frame.Slice(ip + headerLength, totalLength - headerLength);
        if (!fragmented && protocol == PacketBuilder.Icmp)
        {
            // An error's quoted IPv4 header must verify too.
            var quotes = l4.Length >= 28 && l4[0] is 3 or 11;
            return InternetChecksum.Compute(l4) == 0 && (!quotes || InternetChecksum.Compute(l4.Slice(8, (l4[8] & 0x0f) * 4)) == 0);
        }
        if (fragmented || (protocol != PacketBuilder.Tcp && protocol != PacketBuilder.Udp)) return true;
        if (protocol == PacketBuilder.Udp && l4.Length >= 8 && BinaryPrimitives.ReadUInt16BigEndian(l4[6..]) == 0) return true;
        var pseudo = InternetChecksum.PseudoHeader(frame.Slice(ip + 12, 4), frame.Slice(ip + 16, 4), protocol, l4.Length);
        return InternetChecksum.Compute(l4, pseudo) == 0;
    }
}
