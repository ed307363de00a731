using System.Diagnostics;
using Sluice.Datapath.Abi;
using Sluice.Datapath.Loading;

namespace Sluice.Datapath.Connections;

/// <summary>Why the sweeper deleted a connection (a metric label).</summary>
public enum ExpiryReason
{
    /// <summary>Idle past its state's timeout (handshake, established, half-closed, UDP).</summary>
    Idle,
    /// <summary>Closed (both FINs, a RST, or replaced) and held long enough.</summary>
    Closed,
    /// <summary>Its service or backend is gone or changed, and it has been quiet for the stale hold.</summary>
    Stale,
    /// <summary>A reverse half whose forward half now names a newer connection.</summary>
    Orphan,
}

/// <summary>One sweep: what the snapshot held, what went, the budget in use after it.</summary>
public sealed record SweepResult(
    IReadOnlyList<Connection> Connections, IReadOnlyDictionary<ExpiryReason, int> Expired, long HandshakesInProgress, TimeSpan Duration)
{
    /// <summary>Unproven TCP connections this sweep deleted: room it made in the handshake budget.</summary>
    public int HandshakesFreed { get; init; }

    public int TotalExpired => Expired.Values.Sum();

    /// <summary>Connections of the snapshot by (state, "tcp" or "udp").</summary>
    public IReadOnlyDictionary<(ConnectionState State, string Protocol), int> ByState =>
        Connections.GroupBy(c => (c.State, c.Client.Protocol == 17 ? "udp" : "tcp")).ToDictionary(g => g.Key, g => g.Count());
}

/// <summary>
/// Deletes expired connections: the only deleter of connection state besides a CPU giving
/// back what it just claimed. Per connection, the maps are read again just before the
/// delete (a packet may have come since the snapshot), the forward half is taken with its
/// value at that moment (whatever was taken is accounted for), and only a reverse half
/// that is still this connection's goes with it, freeing the SNAT port.
/// Single-threaded by design: one sweeper per datapath.
/// </summary>
public sealed class ConnectionSweeper
{
    private const byte Tcp = 6;
    private readonly ConnectionMaps maps;
    private readonly Queue<long> drifts = new();
    private long swept;
    private HashSet<(Tuple5 Key, ulong CreatedNs)> orphansLastTime = [];
    // Slots retired by the last sweep (or found retired at start): freed at the next one.
    private List<uint> retired;

    public ConnectionSweeper(XdpDatapath datapath, ConnectionTimeouts timeouts)
        : this(ConnectionMaps.Of(datapath), timeouts)
    {
    }

    public ConnectionSweeper(ConnectionMaps maps, ConnectionTimeouts timeouts)
    {
        this.maps = maps;
        Timeouts = timeouts;
        // Adopted maps carry the count of an earlier sweeper: go on from it.
        swept = maps.Handshakes.TryLookup((uint)HandshakeCounter.Swept, out var value) ? value : 0;
        retired = maps.Nat.Retired();
    }

    public ConnectionTimeouts Timeouts { get; set; }

    public SweepResult Sweep(ulong nowNs)
    {
        var clock = Stopwatch.StartNew();
        // Retired a sweep ago: no CPU still holds them (a program runs for microseconds).
        foreach (var index in retired)
        {
            maps.Nat.Free(index);
        }
        retired = [];
        var inProgressBefore = HandshakesInProgress();
        var snapshot = ConnectionTable.Read(maps.Flows, maps.Nat);
        var inProgressAfter = HandshakesInProgress();
        var services = maps.Services.ReadAll().ToDictionary(e => e.Key, e => e.Value);
        var backends = new Dictionary<uint, BackendEntry?>();
        var expired = Enum.GetValues<ExpiryReason>().ToDictionary(r => r, _ => 0);
        var sweptBefore = swept;
        var freed = 0;
        try
        {
            foreach (var connection in snapshot.Connections)
            {
                if (ReasonToExpire(connection, nowNs, services, backends) is not null &&
                    Reread(connection) is { } current && ReasonToExpire(current, nowNs, services, backends) is { } reason)
                {
                    freed += Delete(current, reason, expired);
                }
            }
            DeleteOrphans(snapshot, nowNs, expired);
            CorrectHandshakeCount(snapshot, inProgressBefore, inProgressAfter);
        }
        finally
        {
            if (swept != sweptBefore)
            {
                maps.Handshakes.Update((uint)HandshakeCounter.Swept, swept);
            }
        }
        return new SweepResult(snapshot.Connections, expired, HandshakesInProgress(), clock.Elapsed) { HandshakesFreed = freed };
    }

    /// <summary>TCP connections still in their handshake, as the datapath's budget sees them.</summary>
    public long HandshakesInProgress() =>
        (maps.Handshakes.TryLookup((uint)HandshakeCounter.Datapath, out var opened) ? opened : 0) -
        (maps.Handshakes.TryLookup((uint)HandshakeCounter.Swept, out var gone) ? gone : 0);

    /// <summary>The connection as the maps hold it now, or null if its forward half is gone or names another.</summary>
    private Connection? Reread(Connection connection)
    {
        if (!maps.Flows.TryLookup(connection.Client, out var flow) || !SameIdentity(flow, connection.Forward))
        {
            return null;
        }
        NatEntry? reverse = maps.Nat.TryLookup(connection.ReplyKey, out var r) &&
            Connection.SameConnection(connection.Client, flow, connection.ReplyKey, r) ? r : null;
        return connection with { Forward = flow, Reverse = reverse };
    }

    /// <summary>Returns 1 if what it took was an unproven handshake, else 0.</summary>
    private int Delete(Connection connection, ExpiryReason reason, Dictionary<ExpiryReason, int> expired)
    {
        if (!maps.Flows.TryTake(connection.Client, out var taken))
        {
            return 0;
        }
        var unproven = 0;
        // Whatever was taken leaves the handshake budget if it was in it: a newer connection
        // that took the key in the last microseconds too (its reverse half is then an orphan).
        if (connection.Client.Protocol == Tcp && !taken.Flags.HasFlag(ConnectionFlags.Established))
        {
            swept++;
            unproven = 1;
        }
        if (!SameIdentity(taken, connection.Forward))
        {
            return unproven;
        }
        if (connection.Reverse is { } half && maps.Nat.TryRetire(connection.ReplyKey, half.CreatedNs, out var index))
        {
            retired.Add(index); // only if still this connection's
        }
        expired[reason]++;
        return unproven;
    }

    /// <summary>
    /// A reverse half whose connection moved on may still carry that connection's last
    /// segments: it goes once quiet for the closed hold (the stale hold if it never closed),
    /// and only if it was an orphan at the previous sweep too (a half being created right now
    /// has its forward half a moment later) and no forward half names it now.
    /// </summary>
    private void DeleteOrphans(ConnectionSnapshot snapshot, ulong nowNs, Dictionary<ExpiryReason, int> expired)
    {
        var orphans = new HashSet<(Tuple5, ulong)>();
        foreach (var (key, half) in snapshot.OrphanReverseHalves)
        {
            orphans.Add((key, half.CreatedNs));
            if (!orphansLastTime.Contains((key, half.CreatedNs)) || !maps.Nat.TryLookup(key, out var current) ||
                current.CreatedNs != half.CreatedNs || !OrphanQuiet(current, nowNs))
            {
                continue;
            }
            var client = Connection.ClientKeyOf(key, current);
            if (maps.Flows.TryLookup(client, out var flow) && Connection.SameConnection(client, flow, key, current))
            {
                continue;
            }
            if (maps.Nat.TryRetire(key, current.CreatedNs, out var index))
            {
                retired.Add(index);
                orphans.Remove((key, half.CreatedNs));
                expired[ExpiryReason.Orphan]++;
            }
        }
        orphansLastTime = orphans;
    }

    private bool OrphanQuiet(NatEntry half, ulong nowNs)
    {
        var closed = Connection.StateOf(Tcp, half.Flags) == ConnectionState.Closed;
        var since = Math.Max(Math.Max(half.LastSeenNs, half.ClosedNs), half.CreatedNs);
        var hold = closed ? Timeouts.TcpClosed : Timeouts.StaleHold;
        return nowNs > since && nowNs - since > Nanoseconds(hold);
    }

    /// <summary>
    /// The budget's count is opened minus proven minus deleted, kept by two writers; a lost
    /// race can leave it off by one. The snapshot's unproven connections are compared with the
    /// count read before and after it (connections open while the tables are read): only a
    /// count above both readings, or below both, is evidence of drift. Evidence of the same sign
    /// three sweeps running is corrected by the smallest of the three, so a count never drifts
    /// for good and a flood in progress is never mistaken for drift.
    /// </summary>
    private void CorrectHandshakeCount(ConnectionSnapshot snapshot, long countBefore, long countAfter)
    {
        var unproven = snapshot.Connections.Count(c => c.Client.Protocol == Tcp && !c.Forward.Flags.HasFlag(ConnectionFlags.Established));
        var drift = Math.Min(countBefore, countAfter) > unproven ? Math.Min(countBefore, countAfter) - unproven
            : Math.Max(countBefore, countAfter) < unproven ? Math.Max(countBefore, countAfter) - unproven
            : 0;
        drifts.Enqueue(drift);
        if (drifts.Count > 3)
        {
            drifts.Dequeue();
        }
        if (drifts.Count == 3 && (drifts.All(d => d > 0) || drifts.All(d => d < 0)))
        {
            swept += drifts.MinBy(Math.Abs);
            drifts.Clear();
        }
    }

    private ExpiryReason? ReasonToExpire(Connection connection, ulong nowNs,
        Dictionary<ServiceKey, ServiceEntry> services, Dictionary<uint, BackendEntry?> backends)
    {
        if (IsStale(connection, services, backends))
        {
            // The backend may still be sending (marked down, not dead): its port is kept until
            // the connection has been quiet in both directions for the stale hold.
            var quietFor = nowNs > connection.LastSeenNs ? nowNs - connection.LastSeenNs : 0;
            return quietFor > Nanoseconds(Timeouts.StaleHold) || connection.IsExpired(nowNs, Timeouts) ? ExpiryReason.Stale : null;
        }
        if (!connection.IsExpired(nowNs, Timeouts))
        {
            return null;
        }
        return connection.State == ConnectionState.Closed ? ExpiryReason.Closed : ExpiryReason.Idle;
    }

    private bool IsStale(Connection connection, Dictionary<ServiceKey, ServiceEntry> services, Dictionary<uint, BackendEntry?> backends)
    {
        var client = connection.Client;
        var flow = connection.Forward;
        if (!services.TryGetValue(new ServiceKey(client.DestinationAddress, client.DestinationPort, client.Protocol), out var service) ||
            service.Id != flow.ServiceId || service.Mode != flow.Mode)
        {
            return true;
        }
        if (!backends.TryGetValue(flow.BackendId, out var backend))
        {
            backends[flow.BackendId] = backend = maps.Backends.TryLookup(flow.BackendId, out var b) ? b : null;
        }
        return backend is not { } current || !current.Flags.HasFlag(BackendFlags.Present) || current.ServiceId != flow.ServiceId ||
            current.Address != flow.BackendAddress || current.Port != flow.BackendPort;
    }

    private static bool SameIdentity(FlowEntry a, FlowEntry b) =>
        a.CreatedNs == b.CreatedNs && a.SnatAddress == b.SnatAddress && a.SnatPort == b.SnatPort &&
        a.BackendAddress == b.BackendAddress && a.BackendPort == b.BackendPort;

    private static ulong Nanoseconds(TimeSpan span) => (ulong)span.Ticks * 100;
}
