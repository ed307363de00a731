using System.Net;
using System.Text.RegularExpressions;
using Sluice.Model.Services;
using Sluice.Model.Validation;

namespace Sluice.Model.Configuration;

/// <summary>Every semantic error of a config file, each with its path.</summary>
public static partial class ConfigValidator
{
    public const int MaxSnatAddresses = 16;

    [GeneratedRegex("^[A-Za-z0-9_.:@-]{1,15}$")]
    private static partial Regex InterfaceName();

    public static void Validate(SluiceConfig config, ValidationErrors errors)
    {
        var datapath = config.Datapath ?? new DatapathSection();
        if (datapath.Interfaces is null || datapath.Interfaces.Count == 0)
        {
            errors.Add("datapath.interfaces", "is required: the interfaces to attach the XDP program to");
        }
        else
        {
            for (var i = 0; i < datapath.Interfaces.Count; i++)
            {
                if (datapath.Interfaces[i] is not { } name || !InterfaceName().IsMatch(name))
                    errors.Add($"datapath.interfaces[{i}]", $"\"{datapath.Interfaces[i]}\" is not an interface name");
            }
            foreach (var duplicate in datapath.Interfaces.GroupBy(n => n).Where(g => g.Count() > 1))
                errors.Add("datapath.interfaces", $"{duplicate.Key} is listed twice");
        }
        if (datapath.AttachMode is not ("native" or "generic")) errors.Add("datapath.attachMode", "must be native or generic");
        if (datapath.SnatAddresses.Count > MaxSnatAddresses) errors.Add("datapath.snatAddresses", $"at most {MaxSnatAddresses} addresses");
        for (var i = 0; i < datapath.SnatAddresses.Count; i++)
        {
            if (!ServiceValidator.IsIPv4(datapath.SnatAddresses[i] ?? ""))
                errors.Add($"datapath.snatAddresses[{i}]", $"\"{datapath.SnatAddresses[i]}\" is not an IPv4 address");
        }
        if (!datapath.PinPath.StartsWith('/')) errors.Add("datapath.pinPath", "must be an absolute path");
        if (datapath.FlowTableSize is < 1024 or > 1 << 26) errors.Add("datapath.flowTableSize", "must be 1024-67108864");
        if (datapath.MaxServices is < 1 or > 1 << 20) errors.Add("datapath.maxServices", "must be 1-1048576");
        if (datapath.MaxBackends is < 1 or > 1 << 22) errors.Add("datapath.maxBackends", "must be 1-4194304");
        if (datapath.FlowHashSeed is < 0 or > uint.MaxValue) errors.Add("datapath.flowHashSeed", "must be 0-4294967295");
        if (datapath.SnatPortMin < 1 || datapath.SnatPortMax > 65535 || datapath.SnatPortMin > datapath.SnatPortMax)
            errors.Add("datapath.snatPortMin", "need 1 <= snatPortMin <= snatPortMax <= 65535");
        if (datapath.Connections is null)
        {
            errors.Add("datapath.connections", "must be a mapping of connection settings, or left out");
        }
        else
        {
            var connections = datapath.Connections;
            if (connections.HandshakeLimit is { } limit && (limit < 1 || limit > datapath.FlowTableSize))
                errors.Add("datapath.connections.handshakeLimit", $"must be 1-{datapath.FlowTableSize} (datapath.flowTableSize)");
            // Last-seen times are refreshed once a second: an idle timeout under two seconds
            // could expire a connection that is sending.
            foreach (var (name, seconds, minimum) in new[]
            {
                ("tcpHandshakeSeconds", connections.TcpHandshakeSeconds, 1d), ("tcpEstablishedSeconds", connections.TcpEstablishedSeconds, 2d),
                ("tcpHalfClosedSeconds", connections.TcpHalfClosedSeconds, 2d), ("tcpClosedSeconds", connections.TcpClosedSeconds, 0.1d),
                ("udpSeconds", connections.UdpSeconds, 2d),
            })
            {
                if (!(seconds >= minimum && seconds <= 7 * 86400)) errors.Add($"datapath.connections.{name}", $"must be {minimum.ToString(System.Globalization.CultureInfo.InvariantCulture)}-604800 seconds");
            }
            if (connections.SweepIntervalMs is < 100 or > 60000) errors.Add("datapath.connections.sweepIntervalMs", "must be 100-60000");
        }

        ValidateListen(config.Api?.Listen, "api.listen", errors);
        ValidateListen(config.Metrics?.Listen, "metrics.listen", errors);
        if (config.Api?.Listen is { } apiListen && config.Metrics?.Listen is { } metricsListen
            && System.Net.IPEndPoint.TryParse(apiListen, out var a) && System.Net.IPEndPoint.TryParse(metricsListen, out var m) && a.Port == m.Port)
        {
            errors.Add("metrics.listen", "must use another port than api.listen");
        }
        if (config.Api is { } api)
        {
            if (string.IsNullOrWhiteSpace(api.TokenFile) || !api.TokenFile.StartsWith('/')) errors.Add("api.tokenFile", "must be an absolute path");
            if (api.MaxRequestBytes is < 1024 or > 64 << 20) errors.Add("api.maxRequestBytes", "must be 1024-67108864");
        }
        if (string.IsNullOrWhiteSpace(config.StateDirectory) || !config.StateDirectory.StartsWith('/'))
            errors.Add("stateDirectory", "must be an absolute path");

        var endpoints = new Dictionary<string, string>();
        foreach (var (name, service) in config.Services ?? [])
        {
            var path = $"services.{name}";
            ServiceValidator.ValidateName(name, path, errors);
            if (service is null)
            {
                errors.Add(path, "must be a service object");
                continue;
            }
            ServiceValidator.Validate(service, path, errors);
            if (service.Mode == "fullnat" && datapath.SnatAddresses.Count == 0)
                errors.Add($"{path}.mode", "fullnat needs at least one address in datapath.snatAddresses");
            var endpoint = ServiceValidator.Endpoint(service);
            if (service.Vip is not null && service.Port is not null && !endpoints.TryAdd(endpoint, name))
                errors.Add(path, $"{endpoint} is already used by service {endpoints[endpoint]}");
        }
    }

    private static void ValidateListen(string? listen, string path, ValidationErrors errors)
    {
        if (listen is null || !IPEndPoint.TryParse(listen, out var endpoint) || endpoint.Port == 0)
            errors.Add(path, $"\"{listen}\" is not address:port");
    }
}
