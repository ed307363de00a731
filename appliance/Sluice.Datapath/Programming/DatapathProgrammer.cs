using System.Net;
using Sluice.Datapath.Abi;
using Sluice.Datapath.Loading;
using Sluice.Datapath.Maglev;

namespace Sluice.Datapath.Programming;

/// <summary>
/// Turns service specs into map entries: allocates service and backend ids, builds and
/// swaps Maglev tables, keeps the VIP set. Each change touches only its own service's
/// entries. On construction it adopts the ids already in the (pinned) maps, so flows
/// that name a backend id keep meaning the same backend after a restart.
/// Not thread-safe: one writer (the reconciler) owns it.
/// </summary>
public sealed class DatapathProgrammer
{
    private readonly XdpDatapath datapath;
    private readonly IdAllocator serviceIds;
    private readonly IdAllocator backendIds;
    private readonly Dictionary<ServiceKey, ProgrammedService> services = [];
    private readonly ReplyVipTable replyVips;

    public DatapathProgrammer(XdpDatapath datapath)
    {
        this.datapath = datapath;
        replyVips = new ReplyVipTable(datapath.ReplyVips);
        serviceIds = new IdAllocator(datapath.Options.MaxServices, "service slots (datapath.maxServices)");
        backendIds = new IdAllocator(datapath.Options.MaxBackends, "backend slots (datapath.maxBackends)");
        AdoptExisting();
    }

    public IReadOnlyDictionary<ServiceKey, ProgrammedService> Services => services;

    /// <summary>Creates or replaces the service at the spec's VIP:port/protocol.</summary>
    public ProgrammedService Apply(ServiceSpec spec) => ApplyAll([spec])[0];

    /// <summary>
    /// Creates or replaces many services: every backend and new table is prepared first,
    /// the tables are swapped in with one batch update, then the service entries follow.
    /// On a failure nothing new is left behind and the services keep their old tables.
    /// </summary>
    public IReadOnlyList<ProgrammedService> ApplyAll(IReadOnlyList<ServiceSpec> specs)
    {
        // In chunks: every prepared table is an open file descriptor until it is swapped in,
        // and a daemon under systemd has 1,024 of them by default.
        if (specs.Count > ChunkSize)
        {
            return specs.Chunk(ChunkSize).SelectMany(ApplyChunk).ToList();
        }
        return ApplyChunk(specs as ServiceSpec[] ?? specs.ToArray());
    }

    private const int ChunkSize = 256;

    private IReadOnlyList<ProgrammedService> ApplyChunk(ServiceSpec[] specs)
    {
        var prepared = new List<Prepared>(specs.Length);
        try
        {
            foreach (var spec in specs)
            {
                prepared.Add(Prepare(spec));
            }
            MaglevTableMap.SwapIn(datapath.MaglevFd, prepared.Select(p => (p.ServiceId, p.Table)).ToList());
        }
        catch
        {
            foreach (var p in prepared)
            {
                Abandon(p);
            }
            throw;
        }
        finally
        {
            foreach (var p in prepared)
            {
                p.Table.Dispose(); // the outer map holds its own reference
            }
        }
        return prepared.Select(Commit).ToList();
    }

    private sealed record Prepared(ServiceSpec Spec, ProgrammedService? Previous, uint ServiceId,
        Dictionary<string, uint> Ids, List<uint> Created, Interop.FileDescriptorHandle Table);

    /// <summary>Backends first (a table may only name backends that exist), then the new table, not yet in use.</summary>
    private Prepared Prepare(ServiceSpec spec)
    {
        var isNew = !services.TryGetValue(spec.Key, out var previous);
        var serviceId = previous?.Id ?? serviceIds.Allocate();
        var ids = new Dictionary<string, uint>(StringComparer.Ordinal);
        var created = new List<uint>();
        try
        {
            foreach (var backend in spec.Backends)
            {
                if (!(previous?.BackendIds.TryGetValue(backend.Name, out var id) ?? false))
                {
                    id = backendIds.Allocate();
                    created.Add(id);
                    datapath.BackendStats.Clear(id);
                }
                ids[backend.Name] = id;
                var presence = backend.State == BackendState.Down ? BackendFlags.None : BackendFlags.Present;
                datapath.Backends.Update(id, new BackendEntry(Be32.From(backend.Address), Be16.FromHost(backend.Port), presence, 0, serviceId));
            }
            var tableSize = spec.MaglevTableSize ?? MaglevTableSizes.For(spec.Backends.Count);
            var active = spec.Backends.Where(b => b.State == BackendState.Active && b.Weight > 0).ToList();
            var table = MaglevTable.Build(active.Select(b => new MaglevBackend(b.Name, b.Weight)).ToList(), tableSize, datapath.Options.FlowHashSeed);
            var activeIds = active.Select(b => ids[b.Name]).ToArray(); // names once, not once per slot
            var tableIds = Array.ConvertAll(table, index => activeIds[index]);
            if (isNew)
            {
                datapath.ServiceStats.Clear(serviceId);
            }
            return new Prepared(spec, previous, serviceId, ids, created, MaglevTableMap.Create(serviceId, tableIds));
        }
        catch
        {
            Abandon(new Prepared(spec, previous, serviceId, ids, created, new Interop.FileDescriptorHandle(-1)));
            throw;
        }
    }

    private void Abandon(Prepared prepared)
    {
        foreach (var id in prepared.Created)
        {
            datapath.Backends.Update(id, default);
            backendIds.Release(id);
        }
        if (prepared.Previous is null)
        {
            serviceIds.Release(prepared.ServiceId);
        }
    }

    /// <summary>The service entry, then the VIP (only now can packets reach the new table); then backends that left are cleared, so their flows go back through Maglev.</summary>
    private ProgrammedService Commit(Prepared prepared)
    {
        var (spec, previous, serviceId, ids, _, _) = prepared;
        var flags = spec.SourceAffinity ? ServiceFlags.SourceAffinity : ServiceFlags.None;
        replyVips.Replace(previous?.Spec, spec); // before the service: its first replies need them
        datapath.Services.Update(spec.Key, new ServiceEntry(serviceId, spec.Mode, flags));
        if (previous is null)
        {
            AddVipReference(spec.Key.Vip);
        }
        else
        {
            foreach (var (name, id) in previous.BackendIds)
            {
                if (!ids.ContainsKey(name))
                {
                    ClearBackend(id);
                }
            }
        }
        var programmed = new ProgrammedService(serviceId, spec, ids);
        services[spec.Key] = programmed;
        return programmed;
    }

    /// <summary>Removes a service; false if it was not programmed.</summary>
    public bool Remove(ServiceKey key)
    {
        if (!services.Remove(key, out var service))
        {
            return false;
        }
        datapath.Services.Delete(key);
        replyVips.Replace(service.Spec, null);
        RemoveVipReference(key.Vip);
        MaglevTableMap.Remove(datapath.MaglevFd, service.Id);
        foreach (var id in service.BackendIds.Values)
        {
            ClearBackend(id);
        }
        serviceIds.Release(service.Id);
        return true;
    }

    /// <summary>Sets the source addresses fullnat flows are translated to.</summary>
    public unsafe void SetSnatAddresses(IReadOnlyList<IPAddress> addresses)
    {
        if (addresses.Count > ConfigEntry.MaxSnatAddresses)
        {
            throw new ArgumentException($"at most {ConfigEntry.MaxSnatAddresses} SNAT addresses are supported", nameof(addresses));
        }
        var config = new ConfigEntry { SnatAddressCount = (uint)addresses.Count };
        for (var i = 0; i < addresses.Count; i++)
        {
            config.SnatAddresses[i] = Be32.From(addresses[i]).Raw;
        }
        datapath.Config.Update(0, config);
    }

    /// <summary>The backend ids in the service's live Maglev table, slot by slot.</summary>
    public uint[] ReadMaglevTable(ServiceKey key) =>
        services.TryGetValue(key, out var service) ? MaglevTableMap.Read(datapath.MaglevFd, service.Id) : [];

    /// <summary>Entries of the service's table map as the kernel allocated it (M + 1).</summary>
    public uint MaglevTableEntries(ServiceKey key) =>
        services.TryGetValue(key, out var service) ? MaglevTableMap.Entries(datapath.MaglevFd, service.Id) : 0;

    public TrafficCounters ServiceCounters(uint serviceId) => Sum(datapath.ServiceStats.Read(serviceId));

    public TrafficCounters BackendCounters(uint backendId) => Sum(datapath.BackendStats.Read(backendId));

    private static TrafficCounters Sum(TrafficCounters[] perCpu) => perCpu.Aggregate(default(TrafficCounters), (a, b) => a + b);

    private void ClearBackend(uint id)
    {
        datapath.Backends.Update(id, default);
        backendIds.Release(id);
    }

    private void AddVipReference(Be32 vip)
    {
        datapath.Vips.TryLookup(vip, out var count);
        datapath.Vips.Update(vip, count + 1);
    }

    private void RemoveVipReference(Be32 vip)
    {
        if (datapath.Vips.TryLookup(vip, out var count) && count > 1)
        {
            datapath.Vips.Update(vip, count - 1);
        }
        else
        {
            datapath.Vips.Delete(vip);
        }
    }

    /// <summary>Rebuilds ids from pinned maps. Weights and drain state are not stored in
    /// the maps; the next Apply of each service brings them back.</summary>
    private void AdoptExisting()
    {
        var backendsByService = new Dictionary<uint, List<(uint Id, BackendEntry Entry)>>();
        for (uint id = 0; id < datapath.Options.MaxBackends; id++)
        {
            if (datapath.Backends.TryLookup(id, out var entry) && entry.Flags.HasFlag(BackendFlags.Present))
            {
                if (!backendsByService.TryGetValue(entry.ServiceId, out var list))
                {
                    backendsByService[entry.ServiceId] = list = [];
                }
                list.Add((id, entry));
            }
        }
        foreach (var (key, entry) in datapath.Services.Entries())
        {
            serviceIds.Claim(entry.Id);
            var backends = backendsByService.GetValueOrDefault(entry.Id) ?? [];
            var ids = new Dictionary<string, uint>(StringComparer.Ordinal);
            var specs = new List<BackendSpec>();
            foreach (var (id, backend) in backends)
            {
                backendIds.Claim(id);
                var spec = new BackendSpec(backend.Address.ToIPAddress(), backend.Port.ToHost());
                ids[spec.Name] = id;
                specs.Add(spec);
            }
            var service = new ServiceSpec(key.Vip.ToIPAddress(), key.Port.ToHost(), (L4Protocol)key.Protocol, specs)
            {
                Mode = entry.Mode,
                SourceAffinity = entry.Flags.HasFlag(ServiceFlags.SourceAffinity),
            };
            services[key] = new ProgrammedService(entry.Id, service, ids);
            replyVips.Replace(null, service);
        }
        replyVips.RemoveUnknown();
    }
}

/// <summary>What is in the maps for one service: its id and its backends' ids by name.</summary>
public sealed record ProgrammedService(uint Id, ServiceSpec Spec, IReadOnlyDictionary<string, uint> BackendIds);
