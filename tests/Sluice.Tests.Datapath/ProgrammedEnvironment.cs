using System.Net;
using Sluice.Datapath.Abi;
using Sluice.Datapath.Programming;

namespace Sluice.Tests.Datapath;

/// <summary>The datapath environment with the services the packet cases address.</summary>
public sealed class ProgrammedEnvironment : IDisposable
{
    public static readonly ServiceSpec WebFullNat = Service("198.18.100.1", 80, L4Protocol.Tcp, ServiceMode.FullNat,
        ("198.18.2.10", 8080), ("198.18.2.11", 8080), ("198.18.2.12", 8080));
    public static readonly ServiceSpec DnsDnat = Service("198.18.100.1", 53, L4Protocol.Udp, ServiceMode.Dnat,
        ("198.18.2.13", 5353), ("198.18.2.14", 5353));
    public static readonly ServiceSpec StickyDnat = Service("198.18.100.2", 80, L4Protocol.Tcp, ServiceMode.Dnat,
        ("198.18.2.15", 80), ("198.18.2.16", 80)) with { SourceAffinity = true };
    public static readonly ServiceSpec Empty = Service("198.18.100.3", 80, L4Protocol.Tcp, ServiceMode.FullNat);
    public static readonly ServiceSpec Unresolved = Service("198.18.100.4", 443, L4Protocol.Tcp, ServiceMode.FullNat, ("198.18.2.99", 443));
    public static readonly ServiceSpec Blackholed = Service("198.18.100.5", 80, L4Protocol.Tcp, ServiceMode.FullNat, ("198.18.50.1", 80));
    public static readonly ServiceSpec Unattached = Service("198.18.100.6", 80, L4Protocol.Tcp, ServiceMode.FullNat, ("198.18.3.10", 80));
    public static readonly ServiceSpec UdpFullNat = Service("198.18.100.7", 5000, L4Protocol.Udp, ServiceMode.FullNat, ("198.18.2.17", 5000));
    public static readonly ServiceSpec OnVlan200 = Service("198.18.100.8", 80, L4Protocol.Tcp, ServiceMode.FullNat, ("198.18.20.10", 80));
    public static readonly ServiceSpec DnatOnVlan200 = Service("198.18.100.8", 53, L4Protocol.Udp, ServiceMode.Dnat, ("198.18.20.11", 53));
    public static readonly ServiceSpec OnVlanOfUnattached = Service("198.18.100.9", 80, L4Protocol.Tcp, ServiceMode.FullNat, ("198.18.30.10", 80));

    public ProgrammedEnvironment()
    {
        Env = new DatapathEnvironment();
        if (Env.Thread is null)
        {
            return;
        }
        foreach (var spec in new[] { WebFullNat, DnsDnat, StickyDnat, Empty, Unresolved, Blackholed, Unattached, UdpFullNat, OnVlan200, DnatOnVlan200, OnVlanOfUnattached })
        {
            Env.Apply(spec);
        }
    }

    public DatapathEnvironment Env { get; }

    public static ServiceSpec Service(string vip, ushort port, L4Protocol protocol, ServiceMode mode, params (string Address, ushort Port)[] backends) =>
        new(IPAddress.Parse(vip), port, protocol, backends.Select(b => new BackendSpec(IPAddress.Parse(b.Address), b.Port)).ToList())
        {
            Mode = mode,
        };

    public void Dispose() => Env.Dispose();
}
