using Prometheus;

namespace Sluice.Daemon.Metrics;

/// <summary>
/// Every metric sluiced exports, in a registry of its own (no process or runtime noise).
/// Datapath figures are read from the maps at scrape time (<see cref="DatapathCollector"/>);
/// the rest is counted where it happens. Labels are bounded: service, backend, reason,
/// route — never a client address.
/// </summary>
public sealed class SluiceMetrics
{
    private static readonly string[] Service = ["service"];
    private static readonly string[] ServiceBackend = ["service", "backend"];

    public SluiceMetrics()
    {
        Registry = Prometheus.Metrics.NewCustomRegistry();
        var f = Prometheus.Metrics.WithCustomRegistry(Registry);
        Counter C(string name, string help, string[] labels) => f.CreateCounter(name, help, labels);
        Gauge G(string name, string help, params string[] labels) => f.CreateGauge(name, help, labels);

        ServicePackets = C("sluice_service_packets_total", "Packets from clients balanced to the service's backends.", Service);
        ServiceBytes = C("sluice_service_bytes_total", "Bytes (whole frames) from clients balanced to the service's backends.", Service);
        ServiceNewFlows = C("sluice_service_new_flows_total", "Flows the service balanced with Maglev (flow-table misses).", Service);
        ServiceReplyPackets = C("sluice_service_reply_packets_total", "Reply packets from backends rewritten back to the VIP.", Service);
        ServiceReplyBytes = C("sluice_service_reply_bytes_total", "Reply bytes from backends rewritten back to the VIP.", Service);
        BackendPackets = C("sluice_backend_packets_total", "Packets from clients sent to the backend.", ServiceBackend);
        BackendBytes = C("sluice_backend_bytes_total", "Bytes (whole frames) from clients sent to the backend.", ServiceBackend);
        BackendNewFlows = C("sluice_backend_new_flows_total", "New flows the backend was chosen for.", ServiceBackend);
        BackendReplyPackets = C("sluice_backend_reply_packets_total", "Reply packets from the backend.", ServiceBackend);
        BackendReplyBytes = C("sluice_backend_reply_bytes_total", "Reply bytes from the backend.", ServiceBackend);
        BackendUp = G("sluice_backend_up", "1 if the backend is up (its health checks pass, or it has none), else 0.", ServiceBackend);
        BackendDraining = G("sluice_backend_draining", "1 if the backend is draining: no new flows, existing ones kept.", ServiceBackend);
        BackendLiveFlows = G("sluice_backend_live_flows", "Live flows to the backend in the flow table (not closing, not idle).", ServiceBackend);
        Drops = C("sluice_datapath_drops_total", "Packets the XDP program dropped, by reason.", ["reason"]);
        PacketEvents = C("sluice_datapath_packet_events_total", "What the XDP program did with packets (received, transmitted, flow_hit, ...).", ["event"]);
        FlowEntries = G("sluice_flow_table_entries", "Entries in the flow table (connections; a full table refuses new ones, never evicts).");
        Connections = G("sluice_connections", "Connections at the last sweep, by state (handshake, established, half_closed, closed, datagram) and protocol.", "state", "protocol");
        NextHopsUnresolved = G("sluice_next_hops_unresolved", "Backends whose next hop has no resolved neighbour (the datapath cannot forward to them itself).");
        HandshakeLimit = G("sluice_tcp_handshake_limit", "The handshake budget: TCP connections allowed in their handshake at once (datapath.connections.handshakeLimit).");
        SweepFailures = C("sluice_connection_sweep_failures_total", "Sweeps that failed (logged); expired connections then wait for the next one.", []);
        SweepLastSuccess = G("sluice_connection_sweep_last_success_timestamp_seconds", "Unix time of the last sweep that completed.");
        ConnectionsExpired = C("sluice_flows_expired_total", "Connections the sweeper deleted, by reason (idle, closed, stale, orphan).", ["reason"]);
        HandshakesInProgress = G("sluice_tcp_handshakes_in_progress", "TCP connections whose handshake is not yet proven (the SYN-flood budget in use).");
        SweepDuration = f.CreateHistogram("sluice_connection_sweep_duration_seconds", "Time to read both connection tables and delete the expired connections.",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.0005, 2, 14) });
        FlowCapacity = G("sluice_flow_table_capacity", "Capacity of the flow table in entries.");
        NatEntries = G("sluice_nat_table_entries", "Entries in the reverse-NAT table.");
        NatCapacity = G("sluice_nat_table_capacity", "Capacity of the reverse-NAT table in entries.");
        SnatPortsInUse = G("sluice_snat_ports_in_use", "SNAT source ports held by fullnat flows in the flow table.");
        SnatAllocationFailures = C("sluice_snat_port_allocation_failures_total", "New fullnat flows dropped because every probed SNAT port was taken.", []);
        ReconcileDuration = f.CreateHistogram("sluice_reconcile_duration_seconds", "Time to program one change of the desired state into the maps.",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.0001, 2, 16) });
        MapOperationErrors = C("sluice_map_operation_errors_total", "Changes the reconciler could not program (a map operation failed; the old state was kept).", []);
        HealthTransitions = C("sluice_health_check_transitions_total", "Backends going up or down by their health checks.", ["service", "backend", "state"]);
        ApiRequests = C("sluice_api_requests_total", "REST API requests by route, method and status code.", ["route", "method", "code"]);
    }

    public CollectorRegistry Registry { get; }

    public Counter ServicePackets { get; }
    public Counter ServiceBytes { get; }
    public Counter ServiceNewFlows { get; }
    public Counter ServiceReplyPackets { get; }
    public Counter ServiceReplyBytes { get; }
    public Counter BackendPackets { get; }
    public Counter BackendBytes { get; }
    public Counter BackendNewFlows { get; }
    public Counter BackendReplyPackets { get; }
    public Counter BackendReplyBytes { get; }
    public Gauge BackendUp { get; }
    public Gauge BackendDraining { get; }
    public Gauge BackendLiveFlows { get; }
    public Counter Drops { get; }
    public Counter PacketEvents { get; }
    public Gauge FlowEntries { get; }
    public Gauge Connections { get; }
    public Gauge HandshakeLimit { get; }
    public Counter SweepFailures { get; }

    public Gauge NextHopsUnresolved { get; }
    public Gauge SweepLastSuccess { get; }
    public Counter ConnectionsExpired { get; }
    public Gauge HandshakesInProgress { get; }
    public Histogram SweepDuration { get; }
    public Gauge FlowCapacity { get; }
    public Gauge NatEntries { get; }
    public Gauge NatCapacity { get; }
    public Gauge SnatPortsInUse { get; }
    public Counter SnatAllocationFailures { get; }
    public Histogram ReconcileDuration { get; }
    public Counter MapOperationErrors { get; }
    public Counter HealthTransitions { get; }
    public Counter ApiRequests { get; }
}
