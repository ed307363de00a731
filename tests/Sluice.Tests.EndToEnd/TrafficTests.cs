using System.Net;
using System.Net.Sockets;
using System.Text;
using Sluice.Datapath.Abi;
using Sluice.Datapath.Programming;
using Sluice.Testing;

namespace Sluice.Tests.EndToEnd;

/// <summary>The traffic tests with tx checksum offload off at the endpoints.</summary>
public sealed class TrafficTests(LoadBalancerTopology topology) : TrafficTestsOn<LoadBalancerTopology>(topology), IClassFixture<LoadBalancerTopology>;

/// <summary>The traffic tests with tx checksum offload on (the veth default: partial checksums reach XDP).</summary>
public sealed class TrafficWithChecksumOffloadTests(OffloadLoadBalancerTopology topology)
    : TrafficTestsOn<OffloadLoadBalancerTopology>(topology), IClassFixture<OffloadLoadBalancerTopology>;

/// <summary>Real TCP (HTTP) and UDP from a client namespace through the VIP to real servers.</summary>
public abstract class TrafficTestsOn<TTopology>
    where TTopology : LoadBalancerTopology
{
    private static readonly IPAddress FullNatVip = IPAddress.Parse("198.18.100.10");
    private static readonly IPAddress DnatVip = IPAddress.Parse("198.18.100.11");
    private static readonly IPAddress StreamVip = IPAddress.Parse("198.18.100.12");
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(5);

    private readonly TTopology topology;

    protected TrafficTestsOn(TTopology topology)
    {
        this.topology = topology;
        if (Privileges.SkipReason is not null)
        {
            return;
        }
        topology.Apply(Service(FullNatVip, 80, L4Protocol.Tcp, BackendServer.HttpPort, ServiceMode.FullNat));
        topology.Apply(Service(DnatVip, 80, L4Protocol.Tcp, BackendServer.HttpPort, ServiceMode.Dnat));
        topology.Apply(Service(FullNatVip, 5353, L4Protocol.Udp, BackendServer.UdpPort, ServiceMode.FullNat));
        topology.Apply(Service(DnatVip, 5353, L4Protocol.Udp, BackendServer.UdpPort, ServiceMode.Dnat));
        topology.Apply(Service(StreamVip, 9000, L4Protocol.Tcp, BackendServer.StreamPort, ServiceMode.FullNat));
    }

    private static ServiceSpec Service(IPAddress vip, ushort port, L4Protocol protocol, int backendPort, ServiceMode mode, params int[] backends) =>
        new(vip, port, protocol, (backends.Length == 0 ? [1, 2, 3] : backends)
            .Select(n => new BackendSpec(LoadBalancerTopology.BackendAddress(n), (ushort)backendPort)).ToList())
        {
            Mode = mode,
        };

    [RootTheory]
    [InlineData("fullnat")]
    [InlineData("dnat")]
    public async Task HttpThroughTheVipReachesEveryBackendRoughlyEvenly(string mode)
    {
        var vip = mode == "fullnat" ? FullNatVip : DnatVip;
        using var client = HttpClientInClientNamespace();
        var answers = new Dictionary<string, int>();
        for (var i = 0; i < 300; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"http://{vip}/");
            request.Headers.ConnectionClose = true; // a new TCP connection, so a new flow, every time
            using var response = await client.SendAsync(request);
            response.EnsureSuccessStatusCode();
            var backend = (await response.Content.ReadAsStringAsync()).Trim();
            answers[backend] = answers.GetValueOrDefault(backend) + 1;
        }
        Assert.Equal(3, answers.Count);
        Assert.All(answers.Values, count => Assert.True(count >= 50, $"{mode}: {string.Join(", ", answers)}"));
        topology.AssertNoChecksumErrors();
        if (topology.ChecksumOffload)
        {
            // The endpoints' partial checksums really reached the datapath, and were finished.
            Assert.True(topology.Counter(DatapathCounter.PartialChecksumFinished) > 0);
        }
    }

    [RootTheory]
    [InlineData("fullnat")]
    [InlineData("dnat")]
    public async Task UdpThroughTheVipIsAnsweredFromTheVip(string mode)
    {
        var vip = mode == "fullnat" ? FullNatVip : DnatVip;
        var answers = new Dictionary<string, int>();
        for (var i = 0; i < 150; i++)
        {
            using var socket = topology.ClientSocket(SocketType.Dgram, ProtocolType.Udp);
            using var timeout = new CancellationTokenSource(Patience);
            await socket.SendToAsync(Encoding.ASCII.GetBytes($"query-{i}"), new IPEndPoint(vip, 5353), timeout.Token);
            var buffer = new byte[2048];
            var received = await socket.ReceiveFromAsync(buffer, new IPEndPoint(IPAddress.Any, 0), timeout.Token);
            Assert.Equal(new IPEndPoint(vip, 5353), received.RemoteEndPoint);
            var text = Encoding.ASCII.GetString(buffer, 0, received.ReceivedBytes);
            Assert.EndsWith($":query-{i}", text);
            var backend = text.Split(':')[0];
            answers[backend] = answers.GetValueOrDefault(backend) + 1;
        }
        Assert.Equal(3, answers.Count);
        Assert.All(answers.Values, count => Assert.True(count >= 20, $"{mode}: {string.Join(", ", answers)}"));
        topology.AssertNoChecksumErrors();
    }

    [RootTheory]
    [InlineData("fullnat")]
    [InlineData("dnat")]
    public async Task ADatagramLargerThanTheMtuArrivesWholeAndSoDoesItsReply(string mode)
    {
        // 6,000 bytes: the client's kernel sends five fragments, the backend's answer comes in five too.
        var vip = mode == "fullnat" ? FullNatVip : DnatVip;
        for (var i = 0; i < 5; i++)
        {
            using var socket = topology.ClientSocket(SocketType.Dgram, ProtocolType.Udp);
            using var timeout = new CancellationTokenSource(Patience);
            var query = $"big-{i}-" + new string((char)('a' + i), 6000);
            await socket.SendToAsync(Encoding.ASCII.GetBytes(query), new IPEndPoint(vip, 5353), timeout.Token);
            var buffer = new byte[16384];
            var received = await socket.ReceiveFromAsync(buffer, new IPEndPoint(IPAddress.Any, 0), timeout.Token);
            Assert.Equal(new IPEndPoint(vip, 5353), received.RemoteEndPoint);
            Assert.EndsWith(":" + query, Encoding.ASCII.GetString(buffer, 0, received.ReceivedBytes));
        }
        Assert.True(topology.Counter(DatapathCounter.FragmentFollowed) >= 2 * 5 * 4);
        topology.AssertNoChecksumErrors();
    }

    [RootFact]
    public async Task RemovingABackendLeavesConnectionsToTheOthersUntouched()
    {
        var connections = new List<(Socket Socket, string Backend)>();
        try
        {
            for (var i = 0; i < 30; i++)
            {
                var socket = topology.ClientSocket(SocketType.Stream, ProtocolType.Tcp);
                using var timeout = new CancellationTokenSource(Patience);
                await socket.ConnectAsync(new IPEndPoint(StreamVip, 9000), timeout.Token);
                connections.Add((socket, await ReadLine(socket, timeout.Token)));
            }
            Assert.Contains(connections, c => c.Backend == "backend-2");

            topology.Apply(Service(StreamVip, 9000, L4Protocol.Tcp, BackendServer.StreamPort, ServiceMode.FullNat, 1, 3));

            // Every connection to a remaining backend carries data both ways as before.
            foreach (var (socket, backend) in connections.Where(c => c.Backend != "backend-2"))
            {
                using var timeout = new CancellationTokenSource(Patience);
                var payload = Encoding.ASCII.GetBytes(new string('x', 20000) + backend);
                await socket.SendAsync(payload, timeout.Token);
                var echoed = new byte[payload.Length];
                var read = 0;
                while (read < echoed.Length)
                {
                    var n = await socket.ReceiveAsync(echoed.AsMemory(read), timeout.Token);
                    Assert.True(n > 0, $"connection to {backend} closed after the change");
                    read += n;
                }
                Assert.Equal(payload, echoed);
            }

            // New connections never reach the removed backend.
            for (var i = 0; i < 60; i++)
            {
                using var socket = topology.ClientSocket(SocketType.Stream, ProtocolType.Tcp);
                using var timeout = new CancellationTokenSource(Patience);
                await socket.ConnectAsync(new IPEndPoint(StreamVip, 9000), timeout.Token);
                Assert.NotEqual("backend-2", await ReadLine(socket, timeout.Token));
            }
            topology.AssertNoChecksumErrors();
        }
        finally
        {
            foreach (var (socket, _) in connections)
            {
                socket.Dispose();
            }
        }
    }

    [RootFact]
    public void TheProgramIsAttachedNativelyOnEveryBalancerInterface()
    {
        topology.BalancerThread.Run(() =>
        {
            foreach (var name in new[] { "lbc", "lbb1", "lbb2", "lbb3" })
            {
                Assert.Equal(topology.Datapath.ProgramId, Sluice.Datapath.Loading.XdpDatapath.AttachedProgramId(name));
            }
        });
        var links = topology.Balancer.Exec("ip", "-d", "link", "show", "lbc");
        Assert.Contains("xdp ", links); // "xdp" = native; generic would show "xdpgeneric"
    }

    private HttpClient HttpClientInClientNamespace() => new(new SocketsHttpHandler
    {
        ConnectCallback = async (context, token) =>
        {
            var socket = topology.ClientSocket(SocketType.Stream, ProtocolType.Tcp);
            try
            {
                await socket.ConnectAsync(context.DnsEndPoint, token);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    })
    {
        Timeout = Patience,
    };

    private static async Task<string> ReadLine(Socket socket, CancellationToken token)
    {
        var line = new StringBuilder();
        var one = new byte[1];
        while (await socket.ReceiveAsync(one, token) == 1 && one[0] != '\n')
        {
            line.Append((char)one[0]);
        }
        return line.ToString();
    }
}
