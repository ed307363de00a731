using System.Net;
using Sluice.Datapath.Abi;
using Sluice.Datapath.Programming;
using Sluice.Model.Services;

namespace Sluice.Daemon.Reconciling;

/// <summary>A validated service definition, and its backends' health, as the datapath wants it.</summary>
public static class SpecMapper
{
    public static ServiceSpec ToSpec(ServiceDefinition service, Func<string, bool>? isDown = null) => new(
        IPAddress.Parse(service.Vip!),
        (ushort)service.Port!.Value,
        service.Protocol == "udp" ? L4Protocol.Udp : L4Protocol.Tcp,
        service.Backends.Select(b => new BackendSpec(
            IPAddress.Parse(b.Address!), (ushort)b.Port!.Value, (uint)b.Weight,
            StateOf(service, b, isDown?.Invoke($"{b.Address}:{b.Port}") ?? false))).ToList())
    {
        Mode = service.Mode == "dnat" ? ServiceMode.Dnat : ServiceMode.FullNat,
        SourceAffinity = service.Affinity == "client",
        MaglevTableSize = service.MaglevTableSize,
    };

    /// <summary>Down beats draining: a dead backend's flows are re-hashed unless the check keeps them.</summary>
    private static BackendState StateOf(ServiceDefinition service, BackendDefinition backend, bool down) =>
        down ? (service.HealthCheck?.KeepFlowsWhenDown == true ? BackendState.Draining : BackendState.Down)
        : backend.State == "draining" ? BackendState.Draining : BackendState.Active;
}
