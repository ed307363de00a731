using Sluice.Datapath.Abi;
using Sluice.Datapath.Balancing;
using Sluice.Datapath.Loading;
using Sluice.Datapath.Maglev;
using Sluice.Datapath.Programming;
using Sluice.Testing.Packets;

namespace Sluice.Tests.Datapath;

/// <summary>
/// What the datapath should decide, computed in C# from the specs alone: the Maglev
/// table built here (not read from the kernel), the flow hash, the first SNAT port.
/// </summary>
public static class BalancerModel
{
    public static Tuple5 TupleOf(PacketSpec packet) => new(
        Be32.From(packet.Source), Be32.From(packet.Destination),
        Be16.FromHost(packet.SourcePort), Be16.FromHost(packet.DestinationPort), packet.Protocol);

    public static BackendSpec PickBackend(ServiceSpec service, PacketSpec packet, uint seed)
    {
        var active = service.Backends.Where(b => b.State == BackendState.Active && b.Weight > 0).ToList();
        var size = service.MaglevTableSize ?? MaglevTableSizes.For(service.Backends.Count);
        var table = MaglevTable.Build(active.Select(b => new MaglevBackend(b.Name, b.Weight)).ToList(), size, seed);
        var hash = FlowHash.Of(TupleOf(packet), service.SourceAffinity, seed);
        return active[table[FlowHash.Slot(hash, size)]];
    }

    public static ushort FirstSnatPort(ServiceSpec service, PacketSpec packet, uint backendId, DatapathOptions options)
    {
        // SNAT probing hashes the whole tuple, even for a service with client affinity.
        var hash = FlowHash.Of(TupleOf(packet), sourceAffinity: false, options.FlowHashSeed);
        // The datapath salts the start with the TCP sequence number as it sits in memory
        // (big-endian bytes read as a little-endian word); UDP has none.
        var salt = packet.Protocol == 6 ? System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(packet.TcpSequence) : 0u;
        return FlowHash.FirstSnatPort(hash ^ salt, backendId, options.FlowHashSeed, options.SnatPortMin, options.SnatPortMax);
    }
}
