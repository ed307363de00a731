using Sluice.Datapath.Abi;
using Sluice.Datapath.Maps;

namespace Sluice.Datapath.Connections;

/// <summary>Both halves of every connection, read with batch lookups and paired by key and identity;
/// and the keys of forward halves the sweeper marked dead (no longer connections, deleted at its next sweep).</summary>
public sealed record ConnectionSnapshot(
    IReadOnlyList<Connection> Connections, IReadOnlyList<KeyValuePair<Tuple5, NatEntry>> OrphanReverseHalves, IReadOnlyList<Tuple5> Dead);

public static class ConnectionTable
{
    /// <summary>
    /// Reads the forward halves, then the reverse halves (fullnat; dnat to a backend of several
    /// dnat services). A reverse half no forward half
    /// names (same key, same CreatedNs) is an orphan: the forward half was replaced by a
    /// newer connection, or (briefly) is still being created.
    /// </summary>
    public static ConnectionSnapshot Read(BpfMap<Tuple5, FlowEntry> flows, SnatSlotTable nat)
    {
        var forward = flows.ReadAll();
        var reverse = nat.ReadAll();
        // Keyed by the tuple's 16 raw bytes: a million entries hash several times faster so
        // than through the record's field-by-field equality.
        var index = new Dictionary<UInt128, int>(reverse.Count);
        for (var i = 0; i < reverse.Count; i++)
        {
            index[Raw(reverse[i].Key)] = i;
        }
        var paired = new bool[reverse.Count];
        var connections = new List<Connection>(forward.Count);
        var dead = new List<Tuple5>();
        foreach (var (client, flow) in forward)
        {
            if (flow.IsDead)
            {
                dead.Add(client);
                continue;
            }
            var replyKey = Connection.ReplyKeyOf(client, flow);
            NatEntry? half = null;
            if (index.TryGetValue(Raw(replyKey), out var at) && Connection.SameConnection(client, flow, replyKey, reverse[at].Value))
            {
                half = reverse[at].Value;
                paired[at] = true;
            }
            connections.Add(new Connection(client, flow, replyKey, half));
        }
        var orphans = new List<KeyValuePair<Tuple5, NatEntry>>();
        for (var i = 0; i < reverse.Count; i++)
        {
            if (!paired[i])
            {
                orphans.Add(reverse[i]);
            }
        }
        return new ConnectionSnapshot(connections, orphans, dead);
    }

    private static UInt128 Raw(Tuple5 tuple) => System.Runtime.CompilerServices.Unsafe.As<Tuple5, UInt128>(ref tuple);

    /// <summary>bpf_ktime_get_ns()'s clock: CLOCK_MONOTONIC.</summary>
    public static unsafe ulong NowNs()
    {
        Interop.Libc.TimeSpec now;
        if (Interop.Libc.ClockGetTime(Interop.Libc.ClockMonotonic, &now) != 0)
        {
            throw new InvalidOperationException("clock_gettime(CLOCK_MONOTONIC) failed");
        }
        return (ulong)now.Seconds * 1_000_000_000UL + (ulong)now.Nanoseconds;
    }

    /// <summary>Live connections per (service id, backend id): a half-closed one still counts.</summary>
    public static Dictionary<(uint Service, uint Backend), int> LiveCounts(IEnumerable<Connection> connections, ulong nowNs, ConnectionTimeouts timeouts)
    {
        var counts = new Dictionary<(uint, uint), int>();
        foreach (var connection in connections)
        {
            if (connection.IsLive(nowNs, timeouts))
            {
                var key = (connection.Forward.ServiceId, connection.Forward.BackendId);
                counts[key] = counts.GetValueOrDefault(key) + 1;
            }
        }
        return counts;
    }
}
