namespace Sluice.Datapath.Loading;

/// <summary>The ELF names of the datapath's maps (also their pin file names).</summary>
public static class MapNames
{
    /// <summary>SLUICE_ABI_VERSION: the suffix of every pinned map name.</summary>
    public const int AbiVersion = 5;

    public const string Services = "sluice_services_v5";
    public const string Vips = "sluice_vips_v5";
    public const string Maglev = "sluice_maglev_v5";
    public const string Backends = "sluice_backends_v5";
    public const string Flows = "sluice_flows_v5";
    public const string Nat = "sluice_snat_v5";
    public const string ReplyVips = "sluice_reply_vips_v5";
    public const string Config = "sluice_config_v5";
    public const string Handshakes = "sluice_handshakes_v5";
    public const string TxPorts = "sluice_tx_ports_v5";
    public const string Vlans = "sluice_vlans_v5";
    public const string NextHops = "sluice_next_hops_v5";
    public const string Counters = "sluice_counters_v5";
    public const string Drops = "sluice_drops_v5";
    public const string ServiceStats = "sluice_service_stats_v5";
    public const string BackendStats = "sluice_backend_stats_v5";

    /// <summary>The maps pinned under the pin directory. tx_ports is rebuilt at every load
    /// instead (libbpf 1.1 cannot reuse a pinned devmap).</summary>
    public static readonly IReadOnlyList<string> Pinned =
    [
        Services, Vips, Maglev, Backends, Flows, Nat, ReplyVips, Handshakes, Config, Counters, Drops, ServiceStats, BackendStats,
    ];

    public const string ProgramName = "sluice_xdp";

    /// <summary>The sweeper's reaper program (bpf/lib/reap.h), also pinned under this name so a
    /// tool sweeping from the pins alone can run it.</summary>
    public const string ReaperName = "sluice_reap";

    /// <summary>The reaper's pin file name (its ABI version like the maps').</summary>
    public const string ReaperPin = "sluice_reap_v5";

    /// <summary>Maps of earlier ABI versions that no longer exist under any name.</summary>
    private static readonly string[] Retired = ["sluice_nat_v1"];

    /// <summary>Pins left by an earlier ABI version (same names, older suffix): removing the
    /// datapath removes them too.</summary>
    public static IEnumerable<string> EarlierVersions() =>
        Enumerable.Range(1, AbiVersion - 1).SelectMany(version => Pinned.Concat(Retired).Select(name => name[..name.LastIndexOf('_')] + $"_v{version}")).Distinct();
}
