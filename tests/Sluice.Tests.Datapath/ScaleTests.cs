using System.Net;
using Sluice.Datapath.Loading;
using Sluice.Datapath.Programming;
using Sluice.Datapath.Testing;
using Sluice.Testing;
using Sluice.Testing.Packets;

namespace Sluice.Tests.Datapath;

public sealed class ScaleTests
{
    [RootFact]
    public void TenThousandSmallServicesCostMegabytesOfMaglevTablesNotGigabytes()
    {
        using var env = new DatapathEnvironment(new DatapathOptions
        {
            MaxServices = 16384, MaxBackends = 32768, FlowTableSize = 4096, FlowHashSeed = 3,
        });
        var services = Enumerable.Range(0, 10_000).Select(i => new ServiceSpec(
            new IPAddress([198, 18, (byte)(128 + (i / 100 / 250)), (byte)(1 + (i / 100 % 250))]),
            (ushort)(1000 + (i % 100)),
            L4Protocol.Tcp,
            [
                new BackendSpec(IPAddress.Parse($"198.18.2.{10 + (i % 5)}"), (ushort)(8000 + (i % 1000))),
                new BackendSpec(IPAddress.Parse($"198.18.2.{15 + (i % 5)}"), (ushort)(8000 + (i % 1000))),
            ])).ToList();
        env.Thread.Run(() =>
        {
            foreach (var spec in services)
            {
                env.Programmer.Apply(spec);
            }
        });

        // What the kernel allocated for the tables, read back map by map.
        var entries = env.Thread.Run(() => services.Sum(s => (long)env.Programmer.MaglevTableEntries(s.Key)));
        var bytes = entries * sizeof(uint);
        Assert.Equal(10_000L * (1021 + 1), entries); // every 2-backend service got the smallest table
        Assert.True(bytes < 64L << 20, $"{bytes >> 20} MiB of Maglev tables for 10,000 services");

        // And they work: a sample of services each sends a new flow to one of its own backends.
        var random = new Random(11);
        for (var sample = 0; sample < 50; sample++)
        {
            var spec = services[random.Next(services.Count)];
            var syn = new PacketSpec
            {
                SourceMac = DatapathEnvironment.ClientMac, DestinationMac = DatapathEnvironment.Cl0Mac,
                Source = IPAddress.Parse("198.19.1.20"), Destination = spec.Vip,
                SourcePort = (ushort)(20000 + sample), DestinationPort = spec.Port,
            };
            var result = env.Send(PacketBuilder.Build(syn), "cl0");
            Assert.Equal(XdpAction.Redirect, result.Action);
            var ip = FrameChecks.Ipv4Offset(result.Output);
            var destination = new IPAddress(result.Output.AsSpan(ip + 16, 4));
            var port = (ushort)((result.Output[ip + 22] << 8) | result.Output[ip + 23]);
            Assert.Contains(spec.Backends, b => b.Address.Equals(destination) && b.Port == port);
        }
    }
}
