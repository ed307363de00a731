using Sluice.Datapath.Interop;
using Sluice.Datapath.Vlans;

namespace Sluice.Datapath.Loading;

/// <summary>Attaching through netlink: the attachment outlives this process.</summary>
public sealed unsafe partial class XdpDatapath
{
    private const int EOPNOTSUPP = 95;

    // The redirect targets registered by this process (a devmap cannot be read in batches).
    private readonly HashSet<uint> txPortSet = [];

    /// <summary>
    /// Registers every interface as a redirect target and their VLAN sub-interfaces, then
    /// attaches to each: a program replacing a running one can redirect to all of them from its
    /// first packet.
    /// </summary>
    public IReadOnlyDictionary<string, AttachMode> AttachAll(IReadOnlyList<string> interfaceNames, AttachMode requested = AttachMode.Native)
    {
        foreach (var name in interfaceNames)
        {
            RegisterTxPort(name);
        }
        SyncVlans();
        return interfaceNames.ToDictionary(name => name, name => Attach(name, requested));
    }

    /// <summary>Lists the 802.1Q sub-interfaces of the redirect targets for the datapath (again:
    /// call it when links change; the daemon does so in its watchdog).</summary>
    public IReadOnlyList<VlanSubInterface> SyncVlans()
    {
        lock (txPortSet)
        {
            return vlanPorts.Sync(txPortSet.ToHashSet());
        }
    }

    private void AddTxPort(uint ifindex)
    {
        TxPorts.Update(ifindex, ifindex);
        lock (txPortSet)
        {
            txPortSet.Add(ifindex);
        }
    }

    /// <summary>Lets the program redirect to this interface (it must run XDP too, or have NAPI).</summary>
    public void RegisterTxPort(string interfaceName)
    {
        AddTxPort(InterfaceIndex(interfaceName));
    }

    /// <summary>
    /// Attaches (or atomically replaces whatever program is attached) on the interface,
    /// in the calling thread's network namespace, and registers it as a redirect target.
    /// Native mode falls back to generic only when the driver lacks native XDP, loudly.
    /// </summary>
    public AttachMode Attach(string interfaceName, AttachMode requested = AttachMode.Native, bool allowGenericFallback = true)
    {
        var ifindex = InterfaceIndex(interfaceName);
        var previous = AttachedProgramId(interfaceName);
        var rc = Libbpf.XdpAttach((int)ifindex, ProgramFd, XdpFlags.For(requested), null);
        var mode = requested;
        if (rc == -EOPNOTSUPP && requested == AttachMode.Native && allowGenericFallback)
        {
            Log.FellBackToGeneric(logger, interfaceName);
            mode = AttachMode.Generic;
            rc = Libbpf.XdpAttach((int)ifindex, ProgramFd, XdpFlags.For(mode), null);
        }
        BpfException.ThrowIfNegative(rc, $"attach XDP ({mode}) to {interfaceName}");
        AddTxPort(ifindex);
        Log.Attached(logger, ProgramId, interfaceName, mode, previous);
        return mode;
    }

    /// <summary>Attaches another program of this object (natively), e.g. a benchmark's sink.</summary>
    public void AttachProgram(string programName, string interfaceName)
    {
        var ifindex = InterfaceIndex(interfaceName);
        BpfException.ThrowIfNegative(Libbpf.XdpAttach((int)ifindex, FindProgramFd(programName), XdpFlags.For(AttachMode.Native), null),
            $"attach {programName} to {interfaceName}");
    }

    /// <summary>Detaches whatever XDP program is on the interface (either mode).</summary>
    public static void Detach(string interfaceName)
    {
        var ifindex = (int)InterfaceIndex(interfaceName);
        foreach (var mode in new[] { AttachMode.Native, AttachMode.Generic })
        {
            var rc = Libbpf.XdpDetach(ifindex, XdpFlags.For(mode), null);
            if (rc < 0 && rc != -EOPNOTSUPP && rc != -22 /* EINVAL: nothing in this mode */)
            {
                throw new BpfException($"detach XDP from {interfaceName}", -rc);
            }
        }
    }

    public void DetachAndForget(string interfaceName)
    {
        var ifindex = InterfaceIndex(interfaceName);
        Detach(interfaceName);
        TxPorts.Delete(ifindex);
        lock (txPortSet)
        {
            txPortSet.Remove(ifindex);
        }
        SyncVlans();
        Log.Detached(logger, interfaceName);
    }

    /// <summary>The id of the XDP program on the interface, 0 if none.</summary>
    public static uint AttachedProgramId(string interfaceName)
    {
        var ifindex = InterfaceIndex(interfaceName);
        uint id = 0;
        BpfException.ThrowIfNegative(Libbpf.XdpQueryId((int)ifindex, 0, &id), $"query XDP on {interfaceName}");
        return id;
    }

    public static uint InterfaceIndex(string interfaceName)
    {
        var index = Libc.IfNameToIndex(interfaceName);
        return index != 0
            ? index
            : throw new DatapathException($"interface {interfaceName} does not exist in this network namespace");
    }
}
