using System.Text;

namespace Sluice.Datapath.Maglev;

/// <summary>
/// Maglev lookup-table construction (Eisenbud et al., NSDI 2016, section 3.4), with
/// weights: each round a backend earns credit equal to its weight and places one entry
/// per <c>maxWeight</c> of credit. Offset and skip come from two hashes of the backend's
/// name, so every appliance with the same backends, size and seed builds the same table,
/// whatever order the backends are listed in.
/// </summary>
public static class MaglevTable
{
    /// <summary>Returns, for each of the <paramref name="size"/> slots, an index into <paramref name="backends"/>.</summary>
    public static int[] Build(IReadOnlyList<MaglevBackend> backends, int size, uint seed = 0)
    {
        if (!MaglevTableSizes.IsPrime(size))
        {
            throw new ArgumentException($"Maglev table size {size} is not prime", nameof(size));
        }
        var table = new int[size];

        // Canonical order: by name, so the input order cannot change the table.
        var order = Enumerable.Range(0, backends.Count)
            .Where(i => backends[i].Weight > 0)
            .OrderBy(i => backends[i].Name, StringComparer.Ordinal)
            .ToArray();
        if (order.Length == 0)
        {
            return [];
        }
        var duplicate = order.Select(i => backends[i].Name).GroupBy(n => n).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new ArgumentException($"backend {duplicate.Key} is listed twice", nameof(backends));
        }

        var count = order.Length;
        var position = new int[count];
        var skip = new int[count];
        var weight = new long[count];
        var credit = new long[count];
        for (var k = 0; k < count; k++)
        {
            var name = Encoding.UTF8.GetBytes(backends[order[k]].Name);
            position[k] = (int)(MaglevHash.Hash(name, seed) % (ulong)size);
            skip[k] = (int)(MaglevHash.Hash(name, seed ^ 0x9e3779b9u) % (ulong)(size - 1)) + 1;
            weight[k] = backends[order[k]].Weight;
        }
        var maxWeight = weight.Max();
        // Occupancy in a byte per slot: a quarter of the table's memory, so the probing
        // (most of the work) stays in cache.
        var taken = new bool[size];

        var filled = 0;
        while (true)
        {
            for (var k = 0; k < count; k++)
            {
                credit[k] += weight[k];
                if (credit[k] < maxWeight)
                {
                    continue;
                }
                credit[k] -= maxWeight;
                var slot = position[k];
                var step = skip[k];
                while (taken[slot])
                {
                    slot += step;
                    if (slot >= size) slot -= size;
                }
                taken[slot] = true;
                table[slot] = order[k];
                slot += step;
                position[k] = slot >= size ? slot - size : slot;
                if (++filled == size)
                {
                    return table;
                }
            }
        }
    }
}
