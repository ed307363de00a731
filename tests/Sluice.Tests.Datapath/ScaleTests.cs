using Sluice.Datapath.Maglev;
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
    public void TenThousandSmallServicesCostAHundredAndSixtyMegabytesOfMaglevTablesAndOneChangeTouchesOnlyItsOwn()
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
        Assert.Equal(10_000L * (MaglevTableSizes.Default + 1), entries); // every 2-backend service got the default table
        Assert.True(bytes < 160L << 20, $"{bytes >> 20} MiB of Maglev tables for 10,000 services");

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

        // One change among 10,000 touches only that service's entries: every other
        // service keeps its entry, its backends and its very Maglev table map.
        var before = env.Thread.Run(() => MapImage(env));
        var changed = services[4242] with { Backends = [.. services[4242].Backends, new BackendSpec(IPAddress.Parse("198.18.2.20"), 8000)] };
        env.Thread.Run(() => env.Programmer.Apply(changed));
        var after = env.Thread.Run(() => MapImage(env));
        var changedId = env.Programmer.Services[changed.Key].Id;
        Assert.Equal(before.Services, after.Services); // same keys, same ids, same modes
        Assert.Equal(
            before.Tables.Where(t => t.Key != changedId).OrderBy(t => t.Key),
            after.Tables.Where(t => t.Key != changedId).OrderBy(t => t.Key));
        Assert.NotEqual(before.Tables[changedId], after.Tables[changedId]); // its table was swapped
        var newBackends = after.Backends.Except(before.Backends).ToList();
        Assert.Equal(changedId, Assert.Single(newBackends).Value.ServiceId);
        Assert.Empty(before.Backends.Except(after.Backends));
    }

    /// <summary>Service entries, backend entries, and each service's Maglev table map id.</summary>
    private static (Dictionary<Sluice.Datapath.Abi.ServiceKey, Sluice.Datapath.Abi.ServiceEntry> Services,
        List<KeyValuePair<uint, Sluice.Datapath.Abi.BackendEntry>> Backends, Dictionary<uint, uint> Tables) MapImage(DatapathEnvironment env)
    {
        var services = env.Datapath.Services.Entries().ToDictionary(e => e.Key, e => e.Value);
        var backends = new List<KeyValuePair<uint, Sluice.Datapath.Abi.BackendEntry>>();
        for (uint id = 0; id < env.Options.MaxBackends; id++)
        {
            if (env.Datapath.Backends.TryLookup(id, out var entry) && entry.Flags != 0) backends.Add(new(id, entry));
        }
        var tables = services.Values.ToDictionary(s => s.Id, s => MaglevTableMapId(env, s.Id));
        return (services, backends, tables);
    }

    private static unsafe uint MaglevTableMapId(DatapathEnvironment env, uint serviceId)
    {
        var outer = new Sluice.Datapath.Maps.BpfMap<uint, uint>("maglev", env.Datapath.MaglevFd);
        return outer.TryLookup(serviceId, out var mapId) ? mapId : 0;
    }
}
