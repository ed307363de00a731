using Sluice.Datapath.Abi;

namespace Sluice.Datapath.Connections;

/// <summary>What a connection is doing, from the flags of its two halves.</summary>
public enum ConnectionState
{
    /// <summary>TCP: a SYN seen, the handshake not yet proven.</summary>
    Handshake,
    Established,
    /// <summary>TCP: one side sent its FIN; the other may still send.</summary>
    HalfClosed,
    /// <summary>TCP: both FINs, a RST, or replaced by a newer connection; held briefly for late segments.</summary>
    Closed,
    /// <summary>UDP (no handshake, no close).</summary>
    Datagram,
}

/// <summary>
/// One connection as the maps hold it: the forward half under the client's tuple and, when
/// present, the reverse half under the reply tuple (same <c>CreatedNs</c>): every fullnat
/// connection has one; a dnat connection only if its backend serves several dnat services (the
/// half then names the VIP for its replies). Both directions of a dnat connection write its
/// forward half.
/// </summary>
public readonly record struct Connection(Tuple5 Client, FlowEntry Forward, Tuple5 ReplyKey, NatEntry? Reverse)
{
    private const byte Tcp = 6;

    public ConnectionFlags Flags => Forward.Flags | (Reverse?.Flags ?? ConnectionFlags.None);

    public ConnectionState State => StateOf(Client.Protocol, Flags);

    /// <summary>The last packet in either direction (as the datapath records it, within a second).</summary>
    public ulong LastSeenNs => Math.Max(Math.Max(Math.Max(Forward.LastSeenNs, Forward.CreatedNs), Forward.ReplySeenNs), Reverse?.LastSeenNs ?? 0);

    /// <summary>When the connection was first seen closed, or 0.</summary>
    public ulong ClosedNs => Math.Max(Forward.ClosedNs, Reverse?.ClosedNs ?? 0);

    public static ConnectionState StateOf(byte protocol, ConnectionFlags flags)
    {
        if (protocol != Tcp)
        {
            return ConnectionState.Datagram;
        }
        if (flags.HasFlag(ConnectionFlags.Reset) || flags.HasFlag(ConnectionFlags.Replaced) ||
            (flags.HasFlag(ConnectionFlags.ClientFin) && flags.HasFlag(ConnectionFlags.BackendFin)))
        {
            return ConnectionState.Closed;
        }
        if (!flags.HasFlag(ConnectionFlags.Established))
        {
            return ConnectionState.Handshake;
        }
        return flags.HasFlag(ConnectionFlags.ClientFin) || flags.HasFlag(ConnectionFlags.BackendFin)
            ? ConnectionState.HalfClosed
            : ConnectionState.Established;
    }

    /// <summary>How long this connection may stay idle in its state.</summary>
    public TimeSpan Timeout(ConnectionTimeouts timeouts) => State switch
    {
        ConnectionState.Handshake => timeouts.TcpHandshake,
        ConnectionState.Established => timeouts.TcpEstablished,
        ConnectionState.HalfClosed => timeouts.TcpHalfClosed,
        ConnectionState.Closed => timeouts.TcpClosed,
        _ => timeouts.Udp,
    };

    /// <summary>Past its state's timeout: idle since the last packet; a closed one since its close or
    /// last packet, whichever is later; a handshake since its first SYN.</summary>
    public bool IsExpired(ulong nowNs, ConnectionTimeouts timeouts)
    {
        var since = State switch
        {
            ConnectionState.Closed => Math.Max(LastSeenNs, ClosedNs),
            ConnectionState.Handshake => Forward.CreatedNs, // a retransmitted SYN does not extend it
            _ => LastSeenNs,
        };
        return nowNs > since && nowNs - since > (ulong)Timeout(timeouts).Ticks * 100;
    }

    /// <summary>Still carrying traffic: not closed and not expired. A half-closed connection is live.</summary>
    public bool IsLive(ulong nowNs, ConnectionTimeouts timeouts) => State != ConnectionState.Closed && !IsExpired(nowNs, timeouts);

    /// <summary>The reply tuple of a forward half (bpf/lib/conn.h reply_key_of): its reverse half's key.</summary>
    public static Tuple5 ReplyKeyOf(Tuple5 client, FlowEntry flow) => flow.Mode == ServiceMode.FullNat
        ? new Tuple5(flow.BackendAddress, flow.SnatAddress, flow.BackendPort, flow.SnatPort, client.Protocol)
        : new Tuple5(flow.BackendAddress, client.SourceAddress, flow.BackendPort, client.SourcePort, client.Protocol);

    /// <summary>Two halves of one connection: same creation time, each naming the other's key.</summary>
    public static bool SameConnection(Tuple5 client, FlowEntry flow, Tuple5 replyKey, NatEntry nat) =>
        nat.CreatedNs == flow.CreatedNs && ClientKeyOf(replyKey, nat) == client && ReplyKeyOf(client, flow) == replyKey;

    /// <summary>The forward half's key of a reverse half (client_key_of).</summary>
    public static Tuple5 ClientKeyOf(Tuple5 reply, NatEntry nat) =>
        new(nat.DestinationAddress, nat.SourceAddress, nat.DestinationPort, nat.SourcePort, reply.Protocol);
}
