using Sluice.Datapath.Abi;
using Sluice.Datapath.Maps;

namespace Sluice.Datapath.Observability;

/// <summary>One entry of the flow table: the client's tuple and where its flow goes.</summary>
public sealed record FlowRecord(Tuple5 Client, FlowEntry Flow);

/// <summary>
/// Reads the flow table and tells live flows from dead ones. The datapath marks a flow
/// closing on FIN or RST in either direction and refreshes its last-seen time at most
/// once a second; a flow with neither is live until it has been idle this long.
/// </summary>
public static class FlowTable
{
    public static readonly TimeSpan TcpIdleTimeout = TimeSpan.FromMinutes(10);
    public static readonly TimeSpan UdpIdleTimeout = TimeSpan.FromSeconds(60);

    public static List<FlowRecord> Read(BpfMap<Tuple5, FlowEntry> flows) =>
        flows.Entries().Select(e => new FlowRecord(e.Key, e.Value)).ToList();

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

    public static bool IsLive(FlowRecord record, ulong nowNs)
    {
        if (record.Flow.Flags.HasFlag(FlowFlags.Closing))
        {
            return false;
        }
        var idle = record.Client.Protocol == 17 ? UdpIdleTimeout : TcpIdleTimeout;
        return nowNs < record.Flow.LastSeenNs || nowNs - record.Flow.LastSeenNs < (ulong)idle.Ticks * 100;
    }

    /// <summary>Live flows per (service id, backend id).</summary>
    public static Dictionary<(uint Service, uint Backend), int> LiveCounts(IEnumerable<FlowRecord> flows, ulong nowNs)
    {
        var counts = new Dictionary<(uint, uint), int>();
        foreach (var record in flows)
        {
            if (IsLive(record, nowNs))
            {
                var key = (record.Flow.ServiceId, record.Flow.BackendId);
                counts[key] = counts.GetValueOrDefault(key) + 1;
            }
        }
        return counts;
    }
}
