using Sluice.Model.Services;

namespace Sluice.Model.Configuration;

/// <summary>/etc/sluice/sluice.yaml. Every key has a default except datapath.interfaces.</summary>
public sealed record SluiceConfig
{
    public DatapathSection Datapath { get; init; } = new();
    public ApiSection Api { get; init; } = new();
    public MetricsSection Metrics { get; init; } = new();
    public string StateDirectory { get; init; } = "/var/lib/sluice";
    public Dictionary<string, ServiceDefinition> Services { get; init; } = [];
}

public sealed record DatapathSection
{
    /// <summary>Where the XDP program is attached. Required.</summary>
    public List<string>? Interfaces { get; init; }
    public string AttachMode { get; init; } = "native";
    public List<string> SnatAddresses { get; init; } = [];
    public string PinPath { get; init; } = "/sys/fs/bpf/sluice";
    public long FlowTableSize { get; init; } = 1048576;
    public long MaxServices { get; init; } = 65536;
    public long MaxBackends { get; init; } = 262144;
    /// <summary>Every appliance sharing a VIP must use the same seed.</summary>
    public long FlowHashSeed { get; init; }
    public int SnatPortMin { get; init; } = 1024;
    public int SnatPortMax { get; init; } = 65535;
    public ConnectionsSection Connections { get; init; } = new();
}

/// <summary>Connection tracking: the handshake budget, timeouts by state, the sweeper.</summary>
public sealed record ConnectionsSection
{
    /// <summary>TCP connections in their handshake at once; default a quarter of flowTableSize.</summary>
    public long? HandshakeLimit { get; init; }
    public double TcpHandshakeSeconds { get; init; } = 10;
    public double TcpEstablishedSeconds { get; init; } = 6 * 3600;
    public double TcpHalfClosedSeconds { get; init; } = 600;
    public double TcpClosedSeconds { get; init; } = 2;
    public double UdpSeconds { get; init; } = 60;
    /// <summary>How often expired connections are collected.</summary>
    public long SweepIntervalMs { get; init; } = 1000;
}

public sealed record ApiSection
{
    public string Listen { get; init; } = "127.0.0.1:9080";
    public string TokenFile { get; init; } = "/etc/sluice/api.token";
    /// <summary>Requests with a larger body get 413.</summary>
    public long MaxRequestBytes { get; init; } = 1048576;
}

public sealed record MetricsSection
{
    public string Listen { get; init; } = "127.0.0.1:9091";
}
