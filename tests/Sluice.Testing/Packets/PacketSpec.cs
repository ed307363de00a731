using System.Net;

namespace Sluice.Testing.Packets;

/// <summary>
/// What a test frame holds. <see cref="PacketBuilder"/> turns it into bytes with
/// checksums computed from scratch, so the expected output of a rewrite is built the
/// independent way and compared byte for byte with the program's incremental update.
/// </summary>
public sealed record PacketSpec
{
    public static readonly byte[] DefaultMac = [0x02, 0, 0, 0, 0, 0xff];

    public byte[] DestinationMac { get; init; } = [0x02, 0, 0, 0, 0, 0x01];
    public byte[] SourceMac { get; init; } = [0x02, 0, 0, 0, 0, 0x02];
    /// <summary>802.1Q tags (TCI values), outermost first.</summary>
    public ushort[] VlanTags { get; init; } = [];
    public ushort VlanEtherType { get; init; } = 0x8100;

    public required IPAddress Source { get; init; }
    public required IPAddress Destination { get; init; }
    public byte Protocol { get; init; } = 6;
    public byte Ttl { get; init; } = 64;
    public byte Tos { get; init; }
    public ushort Identification { get; init; } = 0x1234;
    /// <summary>Flags and fragment offset, host order (0x4000 = DF).</summary>
    public ushort FlagsAndOffset { get; init; } = 0x4000;
    public byte[] IpOptions { get; init; } = [];
    public byte? IpVersionOverride { get; init; }
    public byte? IhlOverride { get; init; }
    public int TotalLengthAdjust { get; init; }

    public ushort SourcePort { get; init; }
    public ushort DestinationPort { get; init; }
    public byte TcpFlags { get; init; } = 0x02; // SYN
    public uint TcpSequence { get; init; } = 1000;
    public uint TcpAcknowledgement { get; init; }
    /// <summary>Leave the UDP checksum zero ("no checksum").</summary>
    public bool UdpNoChecksum { get; init; }
    /// <summary>A partial TCP/UDP checksum, as a local socket sends it with tx checksum offload on
    /// (CHECKSUM_PARTIAL): the field holds the folded pseudo-header sum, not complemented, and the
    /// NIC (or the kernel) is to finish it.</summary>
    public bool PartialChecksum { get; init; }
    /// <summary>Send only this part of the datagram's IP payload (its L4 header and checksum built for
    /// the whole): bytes [Offset, Offset + Length), MF set if More. Offset is a multiple of 8.</summary>
    public (int Offset, int Length, bool More)? Fragment { get; init; }
    /// <summary>Write a wrong IPv4 header checksum.</summary>
    public bool BadIpChecksum { get; init; }
    /// <summary>ICMP (protocol 1): type and code; 8/0 is an echo request.</summary>
    public byte IcmpType { get; init; } = 8;
    public byte IcmpCode { get; init; }
    /// <summary>ICMP bytes 4-7 (echo: identifier and sequence; fragmentation needed: the next-hop MTU in the low half).</summary>
    public uint IcmpRest { get; init; }
    public byte[] Payload { get; init; } = [];

    /// <summary>Bytes appended after the IP packet (Ethernet padding), not counted in total length.</summary>
    public int TrailingPadding { get; init; }
    /// <summary>Use these bytes as the whole frame instead of building one (ARP, IPv6, runts).</summary>
    public byte[]? RawBytes { get; init; }

    /// <summary>Cut the frame to this many bytes after building it.</summary>
    public int? TruncateTo { get; init; }
}
