using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Sluice.Datapath.Loading;
using Sluice.Testing;

namespace Sluice.Tests.EndToEnd;

/// <summary>
/// sluiced as a real process in the LB namespace: services made through its API carry
/// real traffic, and a stop with SIGTERM and a new start lose no connection and no byte.
/// </summary>
public sealed class RestartTests
{
    private static readonly IPEndPoint StreamVip = new(IPAddress.Parse("198.18.100.12"), 9000);

    private const string StreamService = """
        {"vip": "198.18.100.12", "port": 9000, "mode": "fullnat", "backends": [
          {"address": "198.18.11.2", "port": 9000}, {"address": "198.18.12.2", "port": 9000}, {"address": "198.18.13.2", "port": 9000}]}
        """;

    private static string Config(string directory, string pinPath) => $"""
        datapath:
          interfaces: [lbc, lbb1, lbb2, lbb3]
          snatAddresses: [198.18.200.1]
          pinPath: {pinPath}
          flowTableSize: 65536
          maxServices: 64
          maxBackends: 512
        api:
          listen: 127.0.0.1:9080
          tokenFile: {directory}/api.token
        stateDirectory: {directory}/state
        """;

    [RootFact]
    public async Task StoppingAndRestartingSluicedLosesNoConnectionAndNoByte()
    {
        using var network = new NetworkTopology();
        var directory = Directory.CreateTempSubdirectory("sluice-restart-").FullName;
        var pinPath = $"/sys/fs/bpf/sluice-restart-{Guid.NewGuid():N}";
        var connections = new List<StreamingConnection>();
        try
        {
            using var daemon = new SluicedProcess(network.Balancer.Name, directory, Config(directory, pinPath));
            daemon.Start();
            using (var api = daemon.Client())
            {
                var created = await api.PutAsync("/api/v1/services/stream", new StringContent(StreamService, System.Text.Encoding.UTF8, "application/json"));
                Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            }
            var firstProgram = await ProgramId(daemon);

            for (var i = 0; i < 50; i++)
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                connections.Add(await StreamingConnection.Open(network.ClientSocket(SocketType.Stream, ProtocolType.Tcp), StreamVip, timeout.Token));
            }
            Assert.Equal(3, connections.Select(c => c.Backend).Distinct().Count());

            using var stop = new CancellationTokenSource();
            var streams = connections.Select((c, id) => Task.Run(() => c.Stream(id, stop.Token))).ToList();
            await StreamingConnection.EveryOneProgresses(connections, "before the restart");

            // Stop the control plane: the datapath must keep forwarding on its own.
            Assert.Equal(0, daemon.Signal(SluicedProcess.SIGTERM));
            Assert.Contains("keeps forwarding", daemon.Log());
            network.BalancerThread.Run(() => Assert.Equal(firstProgram, XdpDatapath.AttachedProgramId("lbc")));
            await StreamingConnection.EveryOneProgresses(connections, "while sluiced was down");

            // Start it again: it adopts the pinned maps and replaces the program in place.
            daemon.Start();
            Assert.Contains("adopted pinned maps: True", daemon.Log());
            var secondProgram = await ProgramId(daemon);
            Assert.NotEqual(firstProgram, secondProgram);
            await StreamingConnection.EveryOneProgresses(connections, "after the restart");

            stop.Cancel();
            await Task.WhenAll(streams);
            foreach (var connection in connections)
            {
                Assert.Null(connection.Failure);
                Assert.Equal(connection.Sent, connection.Echoed); // every byte sent came back
            }

            // The API-owned service came back from the state file.
            using (var api = daemon.Client())
            {
                var service = JsonNode.Parse(await api.GetStringAsync("/api/v1/services/stream"))!;
                Assert.Equal("api", service["owner"]!.GetValue<string>());

                // A backend removed through the API gets no new connections.
                Assert.Equal(HttpStatusCode.NoContent, (await api.DeleteAsync("/api/v1/services/stream/backends/198.18.12.2:9000")).StatusCode);
            }
            for (var i = 0; i < 60; i++)
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                using var fresh = await StreamingConnection.Open(network.ClientSocket(SocketType.Stream, ProtocolType.Tcp), StreamVip, timeout.Token);
                Assert.NotEqual("backend-2", fresh.Backend);
            }
            network.AssertNoChecksumErrors();
        }
        finally
        {
            foreach (var connection in connections)
            {
                connection.Dispose();
            }
            if (Directory.Exists(pinPath))
            {
                XdpDatapath.Unpin(pinPath);
            }
            Directory.Delete(directory, recursive: true);
        }
    }

    private static async Task<uint> ProgramId(SluicedProcess daemon)
    {
        using var api = daemon.Client();
        var status = JsonNode.Parse(await api.GetStringAsync("/api/v1/status"))!;
        return status["datapath"]!["programId"]!.GetValue<uint>();
    }

}
