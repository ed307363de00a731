using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Sluice.Bench.Reporting;

namespace Sluice.Bench.Maglev;

/// <summary>Runs <see cref="MaglevBuildBenchmark"/> with BenchmarkDotNet and keeps the means.</summary>
public static class MaglevBench
{
    public static PartResult Run(bool quick, string artifacts, Action<string> log)
    {
        var started = DateTimeOffset.UtcNow;
        // In process: no generated project to build and restore, the same JIT and GC settings.
        var job = (quick ? Job.Dry.WithIterationCount(3).WithWarmupCount(1) : Job.ShortRun).WithToolchain(InProcessEmitToolchain.Instance);
        var config = ManualConfig.CreateMinimumViable().AddJob(job).WithArtifactsPath(artifacts).WithOptions(ConfigOptions.DisableLogFile);
        var summary = BenchmarkRunner.Run<MaglevBuildBenchmark>(config);
        var measurements = new List<Measurement>();
        foreach (var report in summary.Reports)
        {
            var m = (int)report.BenchmarkCase.Parameters["M"];
            var n = (int)report.BenchmarkCase.Parameters["Backends"];
            var mean = report.ResultStatistics?.Mean ?? double.NaN;
            measurements.Add(new("maglev", $"build M={m}", $"{n}", mean / 1e6, "ms"));
            log($"maglev: M={m}, {n} backends: {mean / 1e6:F3} ms");
        }
        return new PartResult("maglev", started, quick, measurements,
            [quick ? "BenchmarkDotNet Dry job (3 iterations): a smoke run, not a measurement" : "BenchmarkDotNet ShortRun job, in process, mean"]);
    }
}
