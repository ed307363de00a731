using System.Diagnostics;
using Sluice.Datapath.Abi;
using Sluice.Datapath.Loading;

namespace Sluice.Datapath.Connections;

/// <summary>Why the sweeper deleted a connection (a metric label).</summary>
public enum ExpiryReason
{
    /// <summary>Idle past its state's timeout (handshake, established, half-closed, UDP).</summary>
    Idle,
    /// <summary>Closed (both FINs or a RST) and held long enough.</summary>
    Closed,
    /// <summary>Its service is gone or changed mode, or its backend is gone or changed.</summary>
    Stale,
    /// <summary>A reverse half whose forward half was replaced by a newer connection.</summary>
    Orphan,
}

public sealed record SweepResult(int Connections, IReadOnlyDictionary<ExpiryReason, int> Expired, long HandshakesInProgress, TimeSpan Duration)
{
    public int TotalExpired => Expired.Values.Sum();
}

/// <summary>
/// Deletes expired connections: the only deleter of connection state besides a CPU giving
/// back what it just claimed. A connection is deleted forward half first, atomically taken
/// with its current value: if a packet made it live again (or a newer connection took its
/// key) after the snapshot, it is put back. Only then its reverse half goes, and with it
/// the SNAT port: no packet can be rewritten to that port by this connection any more.
/// Single-threaded by design: one sweeper per datapath.
/// </summary>
public sealed class ConnectionSweeper
{
    private const byte Tcp = 6;
    private readonly XdpDatapath datapath;
    private long swept;
    private HashSet<(Tuple5 Key, ulong CreatedNs)> orphansLastTime = [];

    public ConnectionSweeper(XdpDatapath datapath, ConnectionTimeouts timeouts)
    {
        this.datapath = datapath;
        Timeouts = timeouts;
        // Adopted maps carry the count of an earlier sweeper: go on from it.
        swept = datapath.Handshakes.TryLookup((uint)HandshakeCounter.Swept, out var value) ? value : 0;
    }

    public ConnectionTimeouts Timeouts { get; set; }

    public SweepResult Sweep(ulong nowNs)
    {
        var clock = Stopwatch.StartNew();
        var snapshot = ConnectionTable.Read(datapath.Flows, datapath.Nat);
        var services = datapath.Services.ReadAll().ToDictionary(e => e.Key, e => e.Value);
        var backends = new Dictionary<uint, BackendEntry?>();
        var expired = Enum.GetValues<ExpiryReason>().ToDictionary(r => r, _ => 0);
        var unproven = 0;

        foreach (var connection in snapshot.Connections)
        {
            var reason = ReasonToExpire(connection, nowNs, services, backends);
            if (reason is null || !datapath.Flows.TryTake(connection.Client, out var current))
            {
                continue;
            }
            var now = connection with { Forward = current };
            if (current.CreatedNs != connection.Forward.CreatedNs || ReasonToExpire(now, nowNs, services, backends) is null)
            {
                // A packet or a newer connection got there first: put it back. If a SYN
                // re-created the key meanwhile, that one stays and this half is an orphan.
                datapath.Flows.TryInsert(connection.Client, current);
                continue;
            }
            if (connection.Client.Protocol == Tcp && !current.Flags.HasFlag(ConnectionFlags.Established))
            {
                unproven++;
            }
            if (connection.Reverse is not null)
            {
                datapath.Nat.Delete(connection.ReplyKey);
            }
            expired[reason.Value]++;
        }

        // A reverse half whose connection moved on may still carry that connection's last
        // segments: it goes once it has been quiet for the closed hold, and only if it was
        // an orphan at the previous sweep too (a half being created right now has its
        // forward half a moment later) and no forward half names it now.
        var hold = (ulong)Math.Max(Timeouts.TcpClosed.Ticks * 100, (long)ConnectionTimeouts.TouchIntervalNs * 2);
        var orphans = new HashSet<(Tuple5, ulong)>();
        foreach (var (key, half) in snapshot.OrphanReverseHalves)
        {
            orphans.Add((key, half.CreatedNs));
            var since = Math.Max(Math.Max(half.LastSeenNs, half.ClosedNs), half.CreatedNs);
            if (!orphansLastTime.Contains((key, half.CreatedNs)) || nowNs <= since || nowNs - since <= hold)
            {
                continue;
            }
            var client = Connection.ClientKeyOf(key, half);
            if (datapath.Flows.TryLookup(client, out var flow) && Connection.SameConnection(client, flow, key, half))
            {
                continue;
            }
            if (datapath.Nat.TryTake(key, out var taken) && taken.CreatedNs != half.CreatedNs)
            {
                datapath.Nat.TryInsert(key, taken); // a new connection claimed it meanwhile
                continue;
            }
            orphans.Remove((key, half.CreatedNs));
            expired[ExpiryReason.Orphan]++;
        }
        orphansLastTime = orphans;

        if (unproven > 0)
        {
            swept += unproven;
            datapath.Handshakes.Update((uint)HandshakeCounter.Swept, swept);
        }
        return new SweepResult(snapshot.Connections.Count, expired, HandshakesInProgress(), clock.Elapsed);
    }

    /// <summary>TCP connections still in their handshake, as the datapath's budget sees them.</summary>
    public long HandshakesInProgress() =>
        (datapath.Handshakes.TryLookup((uint)HandshakeCounter.Datapath, out var opened) ? opened : 0) -
        (datapath.Handshakes.TryLookup((uint)HandshakeCounter.Swept, out var gone) ? gone : 0);

    private ExpiryReason? ReasonToExpire(Connection connection, ulong nowNs,
        Dictionary<ServiceKey, ServiceEntry> services, Dictionary<uint, BackendEntry?> backends)
    {
        var client = connection.Client;
        var flow = connection.Forward;
        if (!services.TryGetValue(new ServiceKey(client.DestinationAddress, client.DestinationPort, client.Protocol), out var service) ||
            service.Id != flow.ServiceId || service.Mode != flow.Mode)
        {
            return ExpiryReason.Stale;
        }
        if (!backends.TryGetValue(flow.BackendId, out var backend))
        {
            backends[flow.BackendId] = backend = datapath.Backends.TryLookup(flow.BackendId, out var b) ? b : null;
        }
        if (backend is not { } current || !current.Flags.HasFlag(BackendFlags.Present) || current.ServiceId != flow.ServiceId ||
            current.Address != flow.BackendAddress || current.Port != flow.BackendPort)
        {
            return ExpiryReason.Stale;
        }
        if (!connection.IsExpired(nowNs, Timeouts))
        {
            return null;
        }
        return connection.State == ConnectionState.Closed ? ExpiryReason.Closed : ExpiryReason.Idle;
    }
}
