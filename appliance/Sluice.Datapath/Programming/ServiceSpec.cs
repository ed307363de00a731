using System.Net;
using Sluice.Datapath.Abi;

namespace Sluice.Datapath.Programming;

public enum L4Protocol : byte
{
    Tcp = 6,
    Udp = 17,
}

public enum BackendState
{
    /// <summary>In the Maglev table: gets new flows.</summary>
    Active,

    /// <summary>Out of the table, still present: keeps its flows, gets no new ones.</summary>
    Draining,

    /// <summary>Out of the table and not present: its flows are re-hashed. Keeps its id and counters.</summary>
    Down,
}

/// <summary>A backend of a service as the datapath needs it.</summary>
public sealed record BackendSpec(IPAddress Address, ushort Port, uint Weight = 1, BackendState State = BackendState.Active)
{
    /// <summary>The Maglev name: <c>address:port</c>.</summary>
    public string Name => $"{Address}:{Port}";
}

/// <summary>A service as the datapath needs it: where it listens and where it sends.</summary>
public sealed record ServiceSpec(IPAddress Vip, ushort Port, L4Protocol Protocol, IReadOnlyList<BackendSpec> Backends)
{
    public ServiceMode Mode { get; init; } = ServiceMode.FullNat;

    /// <summary>Hash only the client address (client affinity).</summary>
    public bool SourceAffinity { get; init; }

    /// <summary>A prime Maglev table size; null picks one from the backend count.</summary>
    public int? MaglevTableSize { get; init; }

    public ServiceKey Key => new(Be32.From(Vip), Be16.FromHost(Port), (byte)Protocol);

    public override string ToString() => $"{Vip}:{Port}/{Protocol.ToString().ToLowerInvariant()}";
}
