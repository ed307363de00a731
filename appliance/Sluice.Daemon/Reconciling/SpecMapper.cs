using System.Net;
using Sluice.Datapath.Abi;
using Sluice.Datapath.Programming;
using Sluice.Model.Services;

namespace Sluice.Daemon.Reconciling;

/// <summary>A validated service definition as the datapath wants it.</summary>
public static class SpecMapper
{
    public static ServiceSpec ToSpec(ServiceDefinition service) => new(
        IPAddress.Parse(service.Vip!),
        (ushort)service.Port!.Value,
        service.Protocol == "udp" ? L4Protocol.Udp : L4Protocol.Tcp,
        service.Backends.Select(b => new BackendSpec(
            IPAddress.Parse(b.Address!), (ushort)b.Port!.Value, (uint)b.Weight,
            b.State == "draining" ? BackendState.Draining : BackendState.Active)).ToList())
    {
        Mode = service.Mode == "dnat" ? ServiceMode.Dnat : ServiceMode.FullNat,
        SourceAffinity = service.Affinity == "client",
        MaglevTableSize = service.MaglevTableSize,
    };
}
