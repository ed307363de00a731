using Sluice.Datapath.Abi;
using Sluice.Datapath.Connections;

namespace Sluice.Tests.Unit.Connections;

public sealed class ConnectionStateTests
{
    private static readonly Tuple5 Client = new(Be32.From(System.Net.IPAddress.Parse("198.19.1.10")), Be32.From(System.Net.IPAddress.Parse("198.18.100.1")),
        Be16.FromHost(40000), Be16.FromHost(80), 6);

    private static Connection Tcp(ConnectionFlags forward, ConnectionFlags reverse, ulong lastSeenNs)
    {
        var flow = new FlowEntry { FlagBits = (ushort)forward, CreatedNs = 1, LastSeenNs = lastSeenNs };
        return new Connection(Client, flow, Connection.ReplyKeyOf(Client, flow), new NatEntry { Flags = reverse, CreatedNs = 1 });
    }

    [Theory]
    [InlineData(ConnectionFlags.None, ConnectionState.Handshake)]
    [InlineData(ConnectionFlags.Replied, ConnectionState.Handshake)]
    [InlineData(ConnectionFlags.Established, ConnectionState.Established)]
    [InlineData(ConnectionFlags.Established | ConnectionFlags.ClientFin, ConnectionState.HalfClosed)]
    [InlineData(ConnectionFlags.Established | ConnectionFlags.BackendFin, ConnectionState.HalfClosed)]
    [InlineData(ConnectionFlags.Established | ConnectionFlags.ClientFin | ConnectionFlags.BackendFin, ConnectionState.Closed)]
    [InlineData(ConnectionFlags.Reset, ConnectionState.Closed)]
    public void TheStateComesFromBothHalves(ConnectionFlags flags, ConnectionState expected)
    {
        Assert.Equal(expected, Tcp(flags, ConnectionFlags.None, 1).State);
        Assert.Equal(expected, Tcp(ConnectionFlags.None, flags, 1).State);
    }

    [Fact]
    public void AHalfClosedConnectionIsLiveUntilIdlePastItsTimeout()
    {
        var timeouts = new ConnectionTimeouts { TcpHalfClosed = TimeSpan.FromSeconds(600) };
        var halfClosed = Tcp(ConnectionFlags.Established | ConnectionFlags.ClientFin, ConnectionFlags.None, 1_000_000_000);
        Assert.True(halfClosed.IsLive(1_000_000_000 + 599_000_000_000, timeouts));
        Assert.False(halfClosed.IsLive(1_000_000_000 + 601_000_000_000, timeouts));
        Assert.False(Tcp(ConnectionFlags.Reset, ConnectionFlags.None, 1_000_000_000).IsLive(1_000_000_001, timeouts));
    }

    [Fact]
    public void ADnatConnectionIsKeptAliveByTheBackendAlone()
    {
        // A dnat connection is one entry: the backend's packets are recorded in ReplySeenNs.
        var timeouts = new ConnectionTimeouts { TcpHalfClosed = TimeSpan.FromSeconds(600) };
        var flow = new FlowEntry
        {
            Mode = ServiceMode.Dnat, FlagBits = (ushort)(ConnectionFlags.Established | ConnectionFlags.ClientFin), CreatedNs = 1,
            LastSeenNs = 1_000_000_000, ReplySeenNs = 500_000_000_000,
        };
        var streaming = new Connection(Client, flow, Connection.ReplyKeyOf(Client, flow), null);
        Assert.True(streaming.IsLive(1_000_000_000 + 700_000_000_000, timeouts)); // the client went quiet 700 s ago
        Assert.False(streaming.IsLive(500_000_000_000 + 601_000_000_000, timeouts));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(12)]
    [InlineData(1000)]
    [InlineData(64512)]
    [InlineData(65535)]
    public void EveryProbeStrideIsCoprimeWithTheRangeAndInsideIt(int range)
    {
        var strides = SnatStrides.For(range);
        Assert.Equal(LoadConfig.SnatStrideCount, strides.Length);
        Assert.All(strides, s => Assert.True(s >= 1 && (range <= 2 || s < range) && Gcd(s, range) == 1, $"stride {s} for range {range}"));
        if (range > 200)
        {
            Assert.True(strides.Distinct().Count() > 32, "strides spread over the range");
        }
    }

    private static int Gcd(int a, int b) => b == 0 ? a : Gcd(b, a % b);
}
