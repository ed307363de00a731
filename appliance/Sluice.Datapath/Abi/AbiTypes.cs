using System.Runtime.InteropServices;

namespace Sluice.Datapath.Abi;

// Mirrors of bpf/include/sluice_abi.h. Field order and sizes are checked against
// clang's layout by tests/Sluice.Tests.Unit/Abi/AbiLayoutTests.cs.

/// <summary>struct sluice_service_key.</summary>
[StructLayout(LayoutKind.Sequential)]
public record struct ServiceKey(Be32 Vip, Be16 Port, byte Protocol, byte Pad = 0);

/// <summary>struct sluice_service.</summary>
[StructLayout(LayoutKind.Sequential)]
public record struct ServiceEntry(uint Id, ServiceMode Mode, ServiceFlags Flags, ushort Pad = 0);

/// <summary>struct sluice_backend. <c>Egress</c> is the datapath's ((VLAN id &lt;&lt; 32) | ifindex the
/// backend's packets leave by); the control plane writes zero.</summary>
[StructLayout(LayoutKind.Sequential)]
public record struct BackendEntry(Be32 Address, Be16 Port, BackendFlags Flags, byte Pad, uint ServiceId, uint Pad2 = 0, ulong Egress = 0);

/// <summary>struct sluice_vlan: one side of a VLAN sub-interface of an attached interface
/// ({parent, id} -> {sub-interface, 0} and back).</summary>
[StructLayout(LayoutKind.Sequential)]
public record struct VlanPort(uint Ifindex, ushort VlanId, ushort Pad = 0);

/// <summary>struct sluice_tuple: a packet's 5-tuple as seen on the wire.</summary>
[StructLayout(LayoutKind.Sequential)]
public record struct Tuple5(Be32 SourceAddress, Be32 DestinationAddress, Be16 SourcePort, Be16 DestinationPort, byte Protocol, byte Pad0 = 0, byte Pad1 = 0, byte Pad2 = 0);

/// <summary>struct sluice_next_hop: where a backend's packets were last sent, per CPU (ifindex 0: none).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct NextHop
{
    /// <summary>SLUICE_NEXT_HOP_TTL_NS: how late a route, MTU or neighbour change may take effect.</summary>
    public const ulong TtlNs = 1_000_000_000;

    public ulong ResolvedNs;
    public VlanPort Egress;
    public uint InputIfindex;
    public fixed byte DestinationMac[6];
    public fixed byte SourceMac[6];
    public ushort MaxLength;
    public ushort Pad;
    public uint Pad2;
}

/// <summary>struct sluice_flow: a connection's forward half, keyed by the client's tuple (a dnat
/// connection's only entry: <c>BackendIsn</c> and <c>ReplySeenNs</c> are its backend direction's).
/// Its flags and generation are one 32-bit word the datapath changes by compare-and-swap.</summary>
[StructLayout(LayoutKind.Sequential)]
public record struct FlowEntry(
    Be32 BackendAddress, Be16 BackendPort, ServiceMode Mode, byte Pad, uint BackendId, uint ServiceId,
    Be32 SnatAddress, Be16 SnatPort, ushort Pad2, ushort FlagBits, ushort Generation, Be32 BackendIsn,
    ulong CreatedNs, ulong LastSeenNs, ulong ClosedNs, ulong ReplySeenNs = 0)
{
    public readonly ConnectionFlags Flags => (ConnectionFlags)FlagBits;

    /// <summary>Flags and generation as the datapath's one word (what the reaper compares).</summary>
    public readonly uint Word => FlagBits | ((uint)Generation << 16);

    /// <summary>Expired by the sweeper: no longer a connection, deleted at the next sweep.</summary>
    public readonly bool IsDead => Flags.HasFlag(ConnectionFlags.Dead);
}

/// <summary>struct sluice_reap_request: the context of the reaper program.</summary>
[StructLayout(LayoutKind.Sequential)]
public record struct ReapRequest(Tuple5 Key, ulong CreatedNs, ulong LastSeenNs, ulong ReplySeenNs, uint Word, uint Pad = 0);

/// <summary>enum sluice_reap_result.</summary>
public enum ReapResult : uint
{
    /// <summary>Now DEAD: gone for the datapath, deleted at the next sweep.</summary>
    Marked = 0,
    /// <summary>No such entry, or already dead.</summary>
    Gone = 1,
    /// <summary>A packet came since it was read, or a newer connection took its place.</summary>
    Changed = 2,
    /// <summary>A CPU is putting a newer connection in its place right now.</summary>
    Busy = 3,
}

/// <summary>struct sluice_endpoint: a backend as its replies show it (key of reply_vips).</summary>
[StructLayout(LayoutKind.Sequential)]
public record struct Endpoint(Be32 Address, Be16 Port, byte Protocol, byte Pad = 0);

/// <summary>struct sluice_reply_vips: how many dnat services a backend serves, and the VIP:ports of the first <see cref="Max"/>.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct ReplyVips
{
    public const int Max = 8;

    public uint Count;
    public uint Pad;
    public fixed uint Vips[Max * 2]; // Max × {__be32 vip; __be16 port; __u16 pad}

    public static ReplyVips Of(IReadOnlyList<(Be32 Vip, Be16 Port)> vips)
    {
        var value = new ReplyVips { Count = (uint)vips.Count };
        for (var i = 0; i < Math.Min(vips.Count, Max); i++)
        {
            value.Vips[2 * i] = vips[i].Vip.Raw;
            value.Vips[2 * i + 1] = vips[i].Port.Raw;
        }
        return value;
    }

    /// <summary>The VIPs listed (the first <see cref="Max"/> of <see cref="Count"/>).</summary>
    public readonly int Listed => (int)Math.Min(Count, Max);

    public (Be32 Vip, Be16 Port) this[int index] => (new Be32(Vips[2 * index]), new Be16((ushort)Vips[2 * index + 1]));
}

/// <summary>struct sluice_snat_slot: a reverse half (every fullnat connection's; a dnat one's whose backend serves
/// several dnat services), in a slot of the pair its reply tuple hashes to.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct SnatSlot
{
    /// <summary>SLUICE_SLOT_WRITING: the owner while a claimant fills the slot.</summary>
    public const ulong Writing = ulong.MaxValue;

    /// <summary>SLUICE_SLOT_RETIRED: the owner between the two phases of a free.</summary>
    public const ulong Retired = ulong.MaxValue - 1;

    /// <summary>SLUICE_SNAT_SLOT_SEED.</summary>
    public const uint IndexSeed = 0x5a175107;

    public ulong Owner;
    public Tuple5 Key;
    public Be32 SourceAddress;
    public Be32 DestinationAddress;
    public Be16 SourcePort;
    public Be16 DestinationPort;
    public ConnectionFlags Flags;
    public uint ServiceId;
    public uint BackendId;
    public Be32 BackendIsn;
    public uint Pad;
    public ulong LastSeenNs;

    /// <summary>The reverse half as the connection model sees it (its owner is its creation time).</summary>
    public readonly NatEntry ToEntry() => new(SourceAddress, DestinationAddress, SourcePort, DestinationPort, ServiceId, BackendId,
        Flags, BackendIsn, Owner, LastSeenNs, 0);
}

/// <summary>A fullnat connection's reverse half as read from its slot (the VIP and client it
/// translates back to, its state).</summary>
public record struct NatEntry(
    Be32 SourceAddress, Be32 DestinationAddress, Be16 SourcePort, Be16 DestinationPort, uint ServiceId, uint BackendId,
    ConnectionFlags Flags, Be32 BackendIsn, ulong CreatedNs, ulong LastSeenNs, ulong ClosedNs);

/// <summary>enum sluice_conn_flags, kept in both halves of a connection.</summary>
[Flags]
public enum ConnectionFlags : uint
{
    None = 0,
    Established = 1 << 0,
    ClientFin = 1 << 1,
    BackendFin = 1 << 2,
    Reset = 1 << 3,
    Replied = 1 << 4,
    /// <summary>Forward halves: a CPU is putting a newer connection in its place (a moment).</summary>
    Replaced = 1 << 5,
    /// <summary>Forward halves: expired by the sweeper, inert until deleted.</summary>
    Dead = 1 << 6,
}

/// <summary>enum sluice_handshake_counter: indices of the handshakes map.</summary>
public enum HandshakeCounter : uint
{
    Datapath = 0,
    Swept = 1,
}

/// <summary>struct sluice_config.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct ConfigEntry
{
    public const int MaxSnatAddresses = 16;

    public uint SnatAddressCount;
    public fixed uint SnatAddresses[MaxSnatAddresses];
}

/// <summary>struct sluice_load_config: written into .rodata before load.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct LoadConfig
{
    public const uint MaxSnatProbes = 32;
    public const int SnatStrideCount = 64;

    public uint FlowHashSeed;
    public ushort SnatPortMin;
    public ushort SnatPortMax;
    public uint SnatProbes;
    public uint HandshakeLimit;
    public uint SnatSlotMask;
    public uint Pad;
    public fixed ushort SnatStrides[SnatStrideCount];
}

/// <summary>struct sluice_traffic_counters.</summary>
[StructLayout(LayoutKind.Sequential)]
public record struct TrafficCounters(ulong Packets, ulong Bytes, ulong NewFlows, ulong ReplyPackets, ulong ReplyBytes)
{
    public static TrafficCounters operator +(TrafficCounters a, TrafficCounters b) => new(
        a.Packets + b.Packets, a.Bytes + b.Bytes, a.NewFlows + b.NewFlows,
        a.ReplyPackets + b.ReplyPackets, a.ReplyBytes + b.ReplyBytes);
}

/// <summary>enum sluice_mode.</summary>
public enum ServiceMode : byte
{
    FullNat = 0,
    Dnat = 1,
}

/// <summary>enum sluice_service_flags.</summary>
[Flags]
public enum ServiceFlags : byte
{
    None = 0,
    SourceAffinity = 1 << 0,
}

/// <summary>enum sluice_backend_flags.</summary>
[Flags]
public enum BackendFlags : byte
{
    None = 0,
    Present = 1 << 0,
}
