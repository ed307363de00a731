using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Sluice.Datapath.Loading;
using Sluice.Testing;

namespace Sluice.Tests.EndToEnd;

/// <summary>
/// The namespace topology with a real sluiced in the LB namespace, for tests that drive
/// it through its API. Removes its pins and directory, pass or fail.
/// </summary>
public sealed class Appliance : IDisposable
{
    /// <param name="datapathSettings">More keys of the datapath section, indented by two spaces.</param>
    /// <param name="snatAddress">The SNAT address (default one routed to the LB from every backend, on no interface).</param>
    public Appliance(string name, string datapathSettings = "", string snatAddress = "198.18.200.1")
    {
        Directory = System.IO.Directory.CreateTempSubdirectory($"sluice-{name}-").FullName;
        PinPath = $"/sys/fs/bpf/sluice-{name}-{Guid.NewGuid():N}";
        try
        {
            Network = new NetworkTopology();
            Daemon = new SluicedProcess(Network.Balancer.Name, Directory, $"""
                datapath:
                  interfaces: [lbc, lbb1, lbb2, lbb3]
                  snatAddresses: [{snatAddress}]
                  pinPath: {PinPath}
                  flowTableSize: 65536
                  maxServices: 64
                  maxBackends: 512
                {datapathSettings}
                api:
                  listen: 127.0.0.1:9080
                  tokenFile: {Directory}/api.token
                stateDirectory: {Directory}/state
                """);
            Daemon.Start();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Directory { get; }

    public string PinPath { get; }

    public NetworkTopology Network { get; } = null!;

    public SluicedProcess Daemon { get; } = null!;

    public async Task<JsonNode> Put(string path, string json, HttpStatusCode expected = HttpStatusCode.Created)
    {
        using var api = Daemon.Client();
        var response = await api.PutAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"PUT {path}: {(int)response.StatusCode} {body}");
        return JsonNode.Parse(body)!;
    }

    public async Task<JsonNode> Get(string path)
    {
        using var api = Daemon.Client();
        return JsonNode.Parse(await api.GetStringAsync(path))!;
    }

    /// <summary>The status part of one backend of a service, as GET /services/{name} shows it, or null if it is gone.</summary>
    public async Task<JsonNode?> Backend(string service, IPAddress address)
    {
        var view = await Get($"/api/v1/services/{service}");
        return view["status"]!["backends"]!.AsArray().FirstOrDefault(b => b!["address"]!.GetValue<string>() == address.ToString());
    }

    public void Dispose()
    {
        Daemon?.Dispose();
        Network?.Dispose();
        if (System.IO.Directory.Exists(PinPath))
        {
            XdpDatapath.Unpin(PinPath);
        }
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}
