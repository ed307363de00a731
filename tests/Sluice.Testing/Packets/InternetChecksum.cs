namespace Sluice.Testing.Packets;

/// <summary>
/// The Internet checksum computed from scratch (RFC 1071), independent of the
/// datapath's incremental RFC 1624 updates.
/// </summary>
public static class InternetChecksum
{
    public static ushort Compute(ReadOnlySpan<byte> data, uint initial = 0)
    {
        var sum = (ulong)initial;
        var i = 0;
        for (; i + 1 < data.Length; i += 2)
        {
            sum += (uint)((data[i] << 8) | data[i + 1]);
        }
        if (i < data.Length)
        {
            sum += (uint)(data[i] << 8);
        }
        while (sum >> 16 != 0)
        {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        return (ushort)~sum;
    }

    /// <summary>What a partial checksum field holds (Linux CHECKSUM_PARTIAL:
    /// <c>~csum_tcpudp_magic(saddr, daddr, len, proto, 0)</c>): the pseudo-header sum, folded, not complemented.</summary>
    public static ushort Partial(uint pseudoHeaderSum) => (ushort)~Compute([], pseudoHeaderSum);

    /// <summary>Sum of the IPv4 pseudo-header (not complemented, not folded).</summary>
    public static uint PseudoHeader(ReadOnlySpan<byte> source, ReadOnlySpan<byte> destination, byte protocol, int length)
    {
        uint sum = 0;
        for (var i = 0; i < 4; i += 2)
        {
            sum += (uint)((source[i] << 8) | source[i + 1]);
            sum += (uint)((destination[i] << 8) | destination[i + 1]);
        }
        return sum + protocol + (uint)length;
    }
}
