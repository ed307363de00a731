namespace Sluice.Datapath.Connections;

/// <summary>
/// How long a connection may stay idle in each state before the sweeper deletes it and
/// its SNAT port is free again. Idle means no packet in either direction.
/// </summary>
public sealed record ConnectionTimeouts
{
    /// <summary>SLUICE_FLOW_TOUCH_NS: the datapath refreshes a half's last-seen time at most this often.</summary>
    public const ulong TouchIntervalNs = 1_000_000_000;

    /// <summary>TCP before its handshake is proven, counted from the first SYN (a retransmitted
    /// SYN does not extend it). Short: a SYN flood's state must not linger; a client still
    /// retransmitting after it opens the connection again.</summary>
    public TimeSpan TcpHandshake { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>TCP established, both directions open. Long, as Cilium's: idle pooled connections live.</summary>
    public TimeSpan TcpEstablished { get; init; } = TimeSpan.FromHours(6);

    /// <summary>TCP after one side's FIN: the other side may still send for as long as it likes,
    /// so this is an idle time, refreshed by every packet.</summary>
    public TimeSpan TcpHalfClosed { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>TCP after both FINs or a RST: the hold that lets late retransmissions of the old
    /// connection through before its SNAT port can go to another client.</summary>
    public TimeSpan TcpClosed { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>UDP, idle in both directions.</summary>
    public TimeSpan Udp { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>A connection whose backend or service went away (or changed) keeps its SNAT port
    /// until quiet in both directions this long: a backend marked down may be alive and still
    /// retransmitting to a port that must not yet go to another client.</summary>
    public TimeSpan StaleHold { get; init; } = TimeSpan.FromSeconds(120);
}
