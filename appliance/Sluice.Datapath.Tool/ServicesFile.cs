using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Serialization;
using Sluice.Datapath.Abi;
using Sluice.Datapath.Programming;

namespace Sluice.Datapath.Tool;

/// <summary>
/// The tool's input: SNAT addresses and services in the shape of the REST contract's
/// service body, keyed by name. Every error is reported with its path, all at once.
/// </summary>
public sealed record ServicesFile
{
    public List<string> SnatAddresses { get; init; } = [];

    public Dictionary<string, ServiceDocument> Services { get; init; } = [];

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        ReadCommentHandling = JsonCommentHandling.Skip,
    };

    public static (ServicesFile File, List<ServiceSpec> Specs, List<IPAddress> Snat) Load(string path)
    {
        ServicesFile file;
        try
        {
            file = JsonSerializer.Deserialize<ServicesFile>(System.IO.File.ReadAllText(path), Json)
                ?? throw new ToolException($"{path}: empty");
        }
        catch (JsonException ex)
        {
            throw new ToolException($"{path}: {ex.Message}");
        }
        var errors = new List<string>();
        var snat = new List<IPAddress>();
        for (var i = 0; i < file.SnatAddresses.Count; i++)
        {
            if (ParseIPv4(file.SnatAddresses[i]) is { } address) snat.Add(address);
            else errors.Add($"snatAddresses[{i}]: \"{file.SnatAddresses[i]}\" is not an IPv4 address");
        }
        var specs = new List<ServiceSpec>();
        foreach (var (name, service) in file.Services)
        {
            if (service.ToSpec($"services.{name}", errors) is { } spec) specs.Add(spec);
        }
        if (errors.Count > 0)
        {
            throw new ToolException($"{path} is invalid:\n  " + string.Join("\n  ", errors));
        }
        return (file, specs, snat);
    }

    internal static IPAddress? ParseIPv4(string? text) =>
        IPAddress.TryParse(text, out var address) && address.AddressFamily == AddressFamily.InterNetwork ? address : null;
}

public sealed record ServiceDocument
{
    public string? Vip { get; init; }
    public int Port { get; init; }
    public string Protocol { get; init; } = "tcp";
    public string Mode { get; init; } = "fullnat";
    public string Affinity { get; init; } = "none";
    public List<BackendDocument> Backends { get; init; } = [];

    public ServiceSpec? ToSpec(string path, List<string> errors)
    {
        var before = errors.Count;
        var vip = ServicesFile.ParseIPv4(Vip);
        if (vip is null) errors.Add($"{path}.vip: \"{Vip}\" is not an IPv4 address");
        if (Port is < 1 or > 65535) errors.Add($"{path}.port: must be 1-65535");
        L4Protocol protocol = default;
        if (Protocol is not ("tcp" or "udp")) errors.Add($"{path}.protocol: must be tcp or udp");
        else protocol = Protocol == "tcp" ? L4Protocol.Tcp : L4Protocol.Udp;
        if (Mode is not ("fullnat" or "dnat")) errors.Add($"{path}.mode: must be fullnat or dnat");
        if (Affinity is not ("none" or "client")) errors.Add($"{path}.affinity: must be none or client");
        var backends = new List<BackendSpec>();
        for (var i = 0; i < Backends.Count; i++)
        {
            var b = Backends[i];
            var address = ServicesFile.ParseIPv4(b.Address);
            if (address is null) errors.Add($"{path}.backends[{i}].address: \"{b.Address}\" is not an IPv4 address");
            if (b.Port is < 1 or > 65535) errors.Add($"{path}.backends[{i}].port: must be 1-65535");
            if (b.Weight is < 0 or > 10000) errors.Add($"{path}.backends[{i}].weight: must be 0-10000");
            if (b.State is not ("active" or "draining")) errors.Add($"{path}.backends[{i}].state: must be active or draining");
            if (address is not null && backends.Any(x => x.Address.Equals(address) && x.Port == b.Port))
                errors.Add($"{path}.backends[{i}]: {b.Address}:{b.Port} is listed twice");
            if (address is not null)
                backends.Add(new BackendSpec(address, (ushort)b.Port, (uint)Math.Max(0, b.Weight), b.State == "draining" ? BackendState.Draining : BackendState.Active));
        }
        if (errors.Count > before)
        {
            return null;
        }
        return new ServiceSpec(vip!, (ushort)Port, protocol, backends)
        {
            Mode = Mode == "dnat" ? ServiceMode.Dnat : ServiceMode.FullNat,
            SourceAffinity = Affinity == "client",
        };
    }
}

public sealed record BackendDocument
{
    public string? Address { get; init; }
    public int Port { get; init; }
    public int Weight { get; init; } = 1;
    public string State { get; init; } = "active";
}
