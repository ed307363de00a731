namespace Sluice.Datapath.Loading;

/// <summary>The ELF names of the datapath's maps (also their pin file names).</summary>
public static class MapNames
{
    public const string Services = "sluice_services_v1";
    public const string Vips = "sluice_vips_v1";
    public const string Maglev = "sluice_maglev_v1";
    public const string Backends = "sluice_backends_v1";
    public const string Flows = "sluice_flows_v1";
    public const string Nat = "sluice_nat_v1";
    public const string Config = "sluice_config_v1";
    public const string TxPorts = "sluice_tx_ports_v1";
    public const string Counters = "sluice_counters_v1";
    public const string Drops = "sluice_drops_v1";
    public const string ServiceStats = "sluice_service_stats_v1";
    public const string BackendStats = "sluice_backend_stats_v1";

    /// <summary>The maps pinned under the pin directory. tx_ports is rebuilt at every load
    /// instead (libbpf 1.1 cannot reuse a pinned devmap).</summary>
    public static readonly IReadOnlyList<string> Pinned =
    [
        Services, Vips, Maglev, Backends, Flows, Nat, Config, Counters, Drops, ServiceStats, BackendStats,
    ];

    public const string ProgramName = "sluice_xdp";
}
