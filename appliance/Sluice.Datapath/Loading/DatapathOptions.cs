namespace Sluice.Datapath.Loading;

/// <summary>How the XDP object is loaded: map sizes, pinning, load-time knobs.</summary>
public sealed record DatapathOptions
{
    /// <summary>The compiled XDP object; by default the one shipped beside this assembly.</summary>
    public string ObjectPath { get; init; } = Path.Combine(AppContext.BaseDirectory, "bpf", "sluice_xdp.o");

    /// <summary>bpffs directory for the maps; null loads unpinned (tests, tools).</summary>
    public string? PinPath { get; init; }

    public uint MaxServices { get; init; } = 65536;

    public uint MaxBackends { get; init; } = 262144;

    public uint FlowTableSize { get; init; } = 1048576;

    /// <summary>fullnat connections the SNAT slot array holds (it has twice as many slots,
    /// a power of two); defaults to the flow table's size.</summary>
    public uint? NatTableSize { get; init; }

    /// <summary>Every appliance sharing a VIP must use the same seed.</summary>
    public uint FlowHashSeed { get; init; }

    public ushort SnatPortMin { get; init; } = 1024;

    public ushort SnatPortMax { get; init; } = 65535;

    /// <summary>Ports probed per new fullnat flow, 1..32.</summary>
    public uint SnatProbes { get; init; } = 32;

    /// <summary>TCP connections allowed in their handshake at once: a SYN flood fills this
    /// budget, never the rest of the table. Default: a quarter of the flow table.</summary>
    public uint? HandshakeLimit { get; init; }

    public uint EffectiveHandshakeLimit => HandshakeLimit ?? Math.Max(1, FlowTableSize / 4);

    public IEnumerable<string> Validate()
    {
        if (MaxServices == 0) yield return "maxServices: must be at least 1";
        if (MaxBackends == 0) yield return "maxBackends: must be at least 1";
        if (FlowTableSize == 0) yield return "flowTableSize: must be at least 1";
        if (NatTableSize == 0) yield return "natTableSize: must be at least 1";
        if (SnatPortMin == 0 || SnatPortMin > SnatPortMax) yield return "snatPorts: need 1 <= min <= max <= 65535";
        if (SnatProbes is 0 or > Abi.LoadConfig.MaxSnatProbes) yield return $"snatProbes: must be 1-{Abi.LoadConfig.MaxSnatProbes}";
        if (HandshakeLimit == 0 || HandshakeLimit > FlowTableSize) yield return $"handshakeLimit: must be 1-{FlowTableSize} (the flow table's size)";
    }
}
