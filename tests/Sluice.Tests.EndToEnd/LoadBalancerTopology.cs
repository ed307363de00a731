using Sluice.Datapath.Abi;
using Microsoft.Extensions.Logging.Abstractions;
using Sluice.Datapath.Loading;
using Sluice.Datapath.Programming;
using Sluice.Testing;

namespace Sluice.Tests.EndToEnd;

/// <summary>The network with the Sluice program attached (native XDP) to every LB interface by the C# library.</summary>
public class LoadBalancerTopology : NetworkTopology
{
    public LoadBalancerTopology()
        : this(checksumOffload: false)
    {
    }

    protected LoadBalancerTopology(bool checksumOffload)
        : base(checksumOffload)
    {
        if (!Built)
        {
            return;
        }
        try
        {
            BalancerThread.Run(() =>
            {
                Datapath = XdpDatapath.Load(new DatapathOptions { MaxServices = 64, MaxBackends = 256, FlowTableSize = 65536 }, NullLogger.Instance);
                Programmer = new DatapathProgrammer(Datapath);
                Programmer.SetSnatAddresses([SnatAddress]);
                Datapath.AttachAll(BalancerInterfaces, AttachMode.Native);
            });
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public XdpDatapath Datapath { get; private set; } = null!;

    public DatapathProgrammer Programmer { get; private set; } = null!;

    public ProgrammedService Apply(ServiceSpec spec) => BalancerThread.Run(() => Programmer.Apply(spec));

    /// <summary>A datapath counter, summed over CPUs.</summary>
    public ulong Counter(DatapathCounter counter) =>
        BalancerThread.Run(() => Datapath.Counters.Read((uint)counter).Aggregate(0UL, (a, b) => a + b));

    public override void Dispose()
    {
        if (Datapath is not null)
        {
            BalancerThread.Run(() => Datapath.Dispose());
        }
        base.Dispose();
    }
}

/// <summary>The same, with tx checksum offload left on at the endpoints (the veth default).</summary>
public sealed class OffloadLoadBalancerTopology() : LoadBalancerTopology(checksumOffload: true);
