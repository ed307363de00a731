using Sluice.Bench.ControlPlane;
using Sluice.Bench.Maglev;
using Sluice.Bench.PacketCost;
using Sluice.Bench.Reporting;

// sluice-bench PART --out DIR [--quick]: runs one part of the suite and writes DIR/PART.json.
// `report --out DIR` turns every part's JSON into bench/RESULTS.md and bench/results.svg.
if (args.Length < 3 || args[1] != "--out")
{
    Console.Error.WriteLine("usage: sluice-bench packet-cost|packet-rate|control-plane|maglev|sweep|report --out DIR [--quick] | compare --out DIR LABEL BASE... -- CURRENT...");
    return 2;
}
var part = args[0];
var output = Path.GetFullPath(args[2]);
var quick = args.Contains("--quick");
void Log(string line) => Console.WriteLine(line);
switch (part)
{
    case "packet-cost":
        PacketCostBench.Run(quick, Log).Save(output);
        return 0;
    case "packet-rate":
        Sluice.Bench.PacketRate.PacketRateBench.Run(quick, Log).Save(output);
        return 0;
    case "control-plane":
        (await ControlPlaneBench.Run(quick, Log)).Save(output);
        return 0;
    case "maglev":
        MaglevBench.Run(quick, Path.Combine(Path.GetTempPath(), $"sluice-bdn-{Environment.ProcessId}"), Log).Save(output);
        return 0;
    case "sweep":
        Sluice.Bench.Sweep.SweepBench.Run(quick, Log).Save(output);
        return 0;
    case "compare":
    {
        // compare --out DIR LABEL BASELINE-DIR... -- CURRENT-DIR...
        var rest = args[3..];
        var split = Array.IndexOf(rest, "--");
        Comparison.Merge(rest[0], rest[1..split], rest[(split + 1)..]).Save(output);
        return 0;
    }
    case "report":
        Report.Write(output, Log);
        return 0;
    default:
        Console.Error.WriteLine($"unknown part {part}");
        return 2;
}
