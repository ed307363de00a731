using System.Diagnostics;
using Sluice.Datapath.Abi;
using Sluice.Datapath.Interop;
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
/// Expires connections: the only deleter of connection state besides a CPU giving back what it
/// just claimed. An expired connection goes in two steps, so no CPU still holding its forward
/// half ever writes into another connection's (a preallocated hash hands a deleted element to
/// the next insert at once): the reaper program marks it DEAD, in the kernel and only if it is
/// still exactly as the snapshot saw it (a packet may have come since); from then the datapath
/// treats it as gone, and its reverse half is retired. Once an RCU grace period has passed (no CPU
/// still runs a program that found it before), the dead entry is deleted (where no grace period
/// can be waited for, at the next sweep); retired slots are freed at the next sweep, after the
/// round trip of a packet forwarded just before. One sweeper per datapath: a pinned datapath's
/// sweeper holds a lock on its pin directory.
/// </summary>
public sealed class ConnectionSweeper : IDisposable
{
    private const byte Tcp = 6;
    private readonly ConnectionMaps maps;
    private readonly Queue<long> drifts = new();
    private long swept;
    private readonly Func<bool> waitForReaders;
    private HashSet<(Tuple5 Key, ulong CreatedNs)> orphansLastTime = [];
    // Slots retired by the last sweep: freed at the next one. Found retired at start (an earlier
    // sweeper's, retired a moment ago perhaps): freed at the second.
    private List<uint> retired = [];
    private List<uint> retiredBefore;
    private readonly SweeperLock? sweeperLock;
    // Forward halves this sweep marked dead.
    private readonly List<Tuple5> marked = [];
    // Dead forward halves the last sweep found and could not delete yet (no grace period to be had).
    private HashSet<Tuple5> deadLastTime = [];

    public ConnectionSweeper(XdpDatapath datapath, ConnectionTimeouts timeouts, Func<bool>? waitForReaders = null)
        : this(ConnectionMaps.Of(datapath), timeouts, waitForReaders)
    {
    }

    /// <param name="waitForReaders">Waits until no CPU runs a program that started before the call;
    /// false if it cannot (then what a sweep took goes at the next). Default: an RCU grace period.</param>
    public ConnectionSweeper(ConnectionMaps maps, ConnectionTimeouts timeouts, Func<bool>? waitForReaders = null)
    {
        this.maps = maps;
        this.waitForReaders = waitForReaders ?? RcuGracePeriod.TryWait;
        Timeouts = timeouts;
        // Adopted maps carry the count of an earlier sweeper: go on from it.
        swept = maps.Handshakes.TryLookup((uint)HandshakeCounter.Swept, out var value) ? value : 0;
        retiredBefore = maps.Nat.Retired();
        // Last: nothing after it can throw and leave the lock held.
        sweeperLock = maps.PinPath is null ? null : SweeperLock.Acquire(maps.PinPath);
    }

    public ConnectionTimeouts Timeouts { get; set; }

    public SweepResult Sweep(ulong nowNs)
    {
        var clock = Stopwatch.StartNew();
        marked.Clear();
        // Retired a sweep ago: a packet forwarded just before its connection expired has had its
        // round trip (and no CPU still holds the slot), so the port may go to another client.
        FreeRetired();
        retired = retiredBefore;
        retiredBefore = [];
        var inProgressBefore = HandshakesInProgress();
        var snapshot = ConnectionTable.Read(maps.Flows, maps.Nat);
        var inProgressAfter = HandshakesInProgress();
        DeleteLeftoverDead(snapshot.Dead);
        var services = maps.Services.ReadAll().ToDictionary(e => e.Key, e => e.Value);
        var backends = new Dictionary<uint, BackendEntry?>();
        var expired = Enum.GetValues<ExpiryReason>().ToDictionary(r => r, _ => 0);
        var sweptBefore = swept;
        var freed = 0;
        try
        {
            foreach (var connection in snapshot.Connections)
            {
                if (ReasonToExpire(connection, nowNs, services, backends) is not null)
                {
                    freed += Reap(connection, nowNs, services, backends, expired);
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
        if (marked.Count > 0)
        {
            if (waitForReaders())
            {
                // No CPU holds what was marked: the keys are free for new connections now.
                DeleteDead(marked);
            }
            else
            {
                deadLastTime.UnionWith(marked); // marked a sweep before the next: it deletes them
            }
        }
        marked.Clear();
        return new SweepResult(snapshot.Connections, expired, HandshakesInProgress(), clock.Elapsed) { HandshakesFreed = freed };
    }

    /// <summary>
    /// Dead entries a sweep could not delete (no grace period to be had), or an earlier sweeper
    /// left (perhaps marked a moment ago): after a grace period now, or else once seen dead at two
    /// sweeps running. Nothing else can have taken their keys: the datapath neither replaces nor
    /// writes a dead entry, and this is the only sweeper.
    /// </summary>
    private void DeleteLeftoverDead(IReadOnlyList<Tuple5> dead)
    {
        if (dead.Count == 0)
        {
            deadLastTime = [];
            return;
        }
        var waited = waitForReaders();
        var now = waited ? dead : dead.Where(deadLastTime.Contains).ToList();
        DeleteDead(now);
        deadLastTime = waited ? [] : dead.Except(now).ToHashSet();
    }

    /// <summary>Gives up the pin directory's sweeper lock.</summary>
    public void Dispose() => sweeperLock?.Dispose();

    private void DeleteDead(IReadOnlyList<Tuple5> keys)
    {
        try
        {
            maps.Flows.DeleteAll(keys);
        }
        catch (BpfException)
        {
            // A batch stops at a missing key (another tool deleted it): the rest one by one.
            foreach (var key in keys)
            {
                maps.Flows.Delete(key);
            }
        }
    }

    private void FreeRetired()
    {
        foreach (var index in retired)
        {
            maps.Nat.Free(index);
        }
        retired = [];
    }

    /// <summary>TCP connections still in their handshake, as the datapath's budget sees them.</summary>
    public long HandshakesInProgress() =>
        (maps.Handshakes.TryLookup((uint)HandshakeCounter.Datapath, out var opened) ? opened : 0) -
        (maps.Handshakes.TryLookup((uint)HandshakeCounter.Swept, out var gone) ? gone : 0);

    /// <summary>The connection with its reverse half as it is now (the backend may have sent since
    /// the snapshot); the reaper checks the forward half itself.</summary>
    private Connection? RereadReverse(Connection connection)
    {
        if (connection.Reverse is null)
        {
            return connection;
        }
        NatEntry? reverse = maps.Nat.TryLookup(connection.ReplyKey, out var r) &&
            Connection.SameConnection(connection.Client, connection.Forward, connection.ReplyKey, r) ? r : null;
        return connection with { Reverse = reverse };
    }

    /// <summary>
    /// Marks an expired connection dead if it is still as read. A snapshot may be seconds old: if a
    /// packet came since, the connection is read again and judged on what it is now (a handshake
    /// past its timeout expires whatever the spoofer keeps sending). Returns 1 if it was an
    /// unproven handshake, else 0.
    /// </summary>
    private int Reap(Connection connection, ulong nowNs, Dictionary<ServiceKey, ServiceEntry> services,
        Dictionary<uint, BackendEntry?> backends, Dictionary<ExpiryReason, int> expired)
    {
        for (var attempt = 0; attempt < 2; attempt++)
        {
            if (attempt > 0)
            {
                if (!maps.Flows.TryLookup(connection.Client, out var fresh) || fresh.IsDead ||
                    fresh.CreatedNs != connection.Forward.CreatedNs || fresh.Generation != connection.Forward.Generation)
                {
                    return 0;
                }
                connection = connection with { Forward = fresh };
            }
            if (RereadReverse(connection) is not { } current || ReasonToExpire(current, nowNs, services, backends) is not { } reason)
            {
                return 0;
            }
            switch (maps.Reaper.Reap(current.Client, current.Forward))
            {
                case ReapResult.Marked:
                    return Taken(current, reason, expired);
                case ReapResult.Changed:
                    continue;
                default:
                    return 0;
            }
        }
        return 0;
    }

    /// <summary>Accounts for a connection just marked dead (from exactly the flags the reaper compared).</summary>
    private int Taken(Connection connection, ExpiryReason reason, Dictionary<ExpiryReason, int> expired)
    {
        marked.Add(connection.Client);
        // An unproven handshake leaves the budget now (the datapath proves no dead connection).
        var unproven = 0;
        if (connection.Client.Protocol == Tcp && !connection.Forward.Flags.HasFlag(ConnectionFlags.Established))
        {
            swept++;
            unproven = 1;
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
            if (maps.Flows.TryLookup(client, out var flow) && !flow.IsDead && Connection.SameConnection(client, flow, key, current))
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

    private static ulong Nanoseconds(TimeSpan span) => (ulong)span.Ticks * 100;
}
