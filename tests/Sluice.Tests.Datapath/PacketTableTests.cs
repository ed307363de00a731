using Sluice.Datapath.Abi;
using Sluice.Datapath.Testing;
using Sluice.Testing;
using Sluice.Testing.Packets;

namespace Sluice.Tests.Datapath;

/// <summary>Every case of <see cref="PacketCases"/>: exact verdict, exact output bytes, counted reason.</summary>
public sealed class PacketTableTests(ProgrammedEnvironment fixture) : IClassFixture<ProgrammedEnvironment>
{
    public static TheoryData<string> CaseNames => new(PacketCases.All.Keys);

    [Fact]
    public void TheTableHasAtLeastFortyCases() => Assert.True(PacketCases.All.Count >= 40, $"{PacketCases.All.Count} cases");

    [RootTheory]
    [MemberData(nameof(CaseNames))]
    public void Packet(string name)
    {
        var env = fixture.Env;
        var packetCase = PacketCases.All[name](env);
        var outputs = new List<byte[]>();
        foreach (var step in packetCase.Steps)
        {
            var input = PacketBuilder.Build(step.Input);
            var dropsBefore = step.Drop is { } reason ? env.Drops(reason) : 0;
            var counterBefore = step.Counter is { } counter ? env.Counter(counter) : 0;

            var result = env.Send(input, step.Ingress);
            outputs.Add(result.Output);

            Assert.Equal(step.Verdict, result.Action);
            if (step.Verdict != XdpAction.Drop)
            {
                // What leaves is never partial: the datapath finishes a partial checksum it rewrites.
                var expectedSpec = step.Expected is { } spec && step.IpIdFrom is { } from ? spec with { Identification = IpId(outputs[from]) } : step.Expected;
                var expected = expectedSpec is null ? input : PacketBuilder.Build(expectedSpec with { PartialChecksum = false });
                Assert.Equal(Convert.ToHexString(expected), Convert.ToHexString(result.Output));
                if (step.Expected is not null)
                {
                    Assert.True(FrameChecks.ChecksumsValid(result.Output), "output checksums must verify");
                }
            }
            if (step.Drop is { } dropReason)
            {
                Assert.Equal(dropsBefore + 1, env.Drops(dropReason));
            }
            if (step.Counter is { } expectedCounter)
            {
                Assert.True(env.Counter(expectedCounter) > counterBefore, $"counter {expectedCounter} should have risen");
            }
        }
    }

    private static ushort IpId(byte[] frame)
    {
        var ip = FrameChecks.Ipv4Offset(frame);
        return (ushort)((frame[ip + 4] << 8) | frame[ip + 5]);
    }
}
