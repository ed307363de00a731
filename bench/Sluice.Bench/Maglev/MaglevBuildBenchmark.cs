using BenchmarkDotNet.Attributes;
using Sluice.Datapath.Maglev;

namespace Sluice.Bench.Maglev;

/// <summary>Part 5: building one Maglev table (what a backend change costs the control plane).</summary>
[MemoryDiagnoser]
public class MaglevBuildBenchmark
{
    private List<MaglevBackend> backends = [];

    [Params(16381, 65537)]
    public int M { get; set; }

    [Params(10, 100, 1000)]
    public int Backends { get; set; }

    [GlobalSetup]
    public void Setup() =>
        backends = Enumerable.Range(0, Backends).Select(i => new MaglevBackend($"198.18.{i / 250}.{1 + (i % 250)}:8080")).ToList();

    [Benchmark]
    public int[] Build() => MaglevTable.Build(backends, M, seed: 7u);
}
