using System.Numerics;
using Sluice.Datapath.Abi;

namespace Sluice.Datapath.Balancing;

/// <summary>
/// A bit-exact copy of the datapath's flow hash (bpf/lib/jhash.h, maglev.h:flow_hash),
/// so the control plane and tests can predict which Maglev slot a flow lands in.
/// Words are the raw network-order fields as the program loads them on a
/// little-endian host.
/// </summary>
public static class FlowHash
{
    private const uint InitialValue = 0xdeadbeef;

    public static uint Of(Tuple5 tuple, bool sourceAffinity, uint seed)
    {
        if (sourceAffinity)
        {
            return JHashWords(tuple.SourceAddress.Raw, 0, 0, seed + InitialValue + (1 << 2));
        }
        var ports = (((uint)tuple.SourcePort.Raw << 16) | tuple.DestinationPort.Raw) ^ tuple.Protocol;
        return JHashWords(tuple.SourceAddress.Raw, tuple.DestinationAddress.Raw, ports, seed + InitialValue + (3 << 2));
    }

    /// <summary>The first SNAT port the datapath probes for a new fullnat flow (snat.h).</summary>
    public static ushort FirstSnatPort(uint flowHash, uint backendId, uint seed, ushort portMin, ushort portMax)
    {
        var range = (uint)(portMax - portMin + 1);
        var start = JHashWords(flowHash, backendId, 0, seed + InitialValue + (2 << 2)) % range;
        return (ushort)(portMin + start);
    }

    /// <summary>The Maglev slot (0-based) a hash selects in a table of <paramref name="size"/>.</summary>
    public static int Slot(uint hash, int size) => (int)(hash % (uint)size);

    private static uint JHashWords(uint a, uint b, uint c, uint initial)
    {
        a += initial;
        b += initial;
        c += initial;
        c ^= b; c -= BitOperations.RotateLeft(b, 14);
        a ^= c; a -= BitOperations.RotateLeft(c, 11);
        b ^= a; b -= BitOperations.RotateLeft(a, 25);
        c ^= b; c -= BitOperations.RotateLeft(b, 16);
        a ^= c; a -= BitOperations.RotateLeft(c, 4);
        b ^= a; b -= BitOperations.RotateLeft(a, 14);
        c ^= b; c -= BitOperations.RotateLeft(b, 24);
        return c;
    }
}
