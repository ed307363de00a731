using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Sluice.Testing;

namespace Sluice.Tests.Api;

/// <summary>Every route with good input and with each kind of bad input; a rejection changes nothing.</summary>
public sealed class ServiceRouteTests(DaemonFixture fixture) : IClassFixture<DaemonFixture>
{
    private const string Good = """{"vip": "198.18.100.20", "port": 443, "protocol": "tcp", "backends": [{"address": "198.18.2.3", "port": 8443}]}""";

    /// <summary>The good body on another service port (each test its own VIP:port).</summary>
    private static string GoodOn(int port) => Good.Replace("\"port\": 443", $"\"port\": {port}");

    private HttpClient Api() => fixture.Daemon.Client();

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private async Task<string> ServiceList()
    {
        using var api = Api();
        var response = await api.GetAsync("/api/v1/services");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync();
    }

    /// <summary>Sends a request that must be refused with <paramref name="status"/>; the list must not change.</summary>
    private async Task<JsonNode> Refused(HttpStatusCode status, Func<HttpClient, Task<HttpResponseMessage>> send, HttpClient? client = null)
    {
        var before = await ServiceList();
        using var api = client ?? Api();
        var response = await send(api);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"expected {status}, got {response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(before, await ServiceList());
        return JsonNode.Parse(body)!;
    }

    [RootTheory]
    [InlineData("/api/v1/flows?limit=0", HttpStatusCode.BadRequest, "limit")]
    [InlineData("/api/v1/flows?limit=10001", HttpStatusCode.BadRequest, "limit")]
    [InlineData("/api/v1/flows?service=nope", HttpStatusCode.NotFound, null)]
    [InlineData("/api/v1/events?limit=1001", HttpStatusCode.BadRequest, "limit")]
    [InlineData("/api/v1/events?kind=gossip", HttpStatusCode.BadRequest, "kind")]
    public async Task BadFlowAndEventQueriesAreRefusedWithAProblem(string path, HttpStatusCode status, string? field)
    {
        var problem = await Refused(status, api => api.GetAsync(path));
        if (field is not null)
        {
            Assert.NotNull(problem["errors"]![field]);
        }
    }

    [RootFact]
    public async Task HealthAndReadinessNeedNoToken()
    {
        using var anonymous = fixture.Daemon.Client(authenticated: false);
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/healthz")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/readyz")).StatusCode);
    }

    [RootTheory]
    [InlineData("GET", "/api/v1/status")]
    [InlineData("GET", "/api/v1/services")]
    [InlineData("GET", "/api/v1/services/web")]
    [InlineData("PUT", "/api/v1/services/x")]
    [InlineData("DELETE", "/api/v1/services/web")]
    [InlineData("PUT", "/api/v1/services/web/backends/198.18.2.9:80")]
    [InlineData("DELETE", "/api/v1/services/web/backends/198.18.2.2:8080")]
    [InlineData("GET", "/api/v1/flows")]
    [InlineData("GET", "/api/v1/events")]
    public async Task EveryApiRouteNeedsTheToken(string method, string path)
    {
        foreach (var token in new[] { null, "wrong-token-of-some-length" })
        {
            using var client = fixture.Daemon.Client(authenticated: false);
            if (token is not null) client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            var problem = await Refused(HttpStatusCode.Unauthorized,
                api => api.SendAsync(new HttpRequestMessage(new HttpMethod(method), path) { Content = Json(Good) }), client);
            Assert.Equal(401, problem["status"]!.GetValue<int>());
        }
    }

    [RootFact]
    public void TheTokenFileIsCreatedOwnerOnly()
    {
        Assert.Equal("600", Command.Run("stat", "-c", "%a", fixture.Daemon.TokenPath).Trim());
    }

    [RootFact]
    public async Task CreateReadReplaceAndDelete()
    {
        using var api = Api();
        var created = await api.PutAsync("/api/v1/services/tls", Json(Good));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var etag = created.Headers.ETag!.Tag;

        var got = await api.GetAsync("/api/v1/services/tls");
        Assert.Equal(etag, got.Headers.ETag!.Tag);
        var view = JsonNode.Parse(await got.Content.ReadAsStringAsync())!;
        Assert.Equal("api", view["owner"]!.GetValue<string>());
        Assert.True(view["status"]!["programmed"]!.GetValue<bool>());
        Assert.Equal(8443, view["spec"]!["backends"]![0]!["port"]!.GetValue<int>());

        var again = await api.PutAsync("/api/v1/services/tls", Json(Good)); // idempotent
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Equal(etag, again.Headers.ETag!.Tag);

        var replaced = await api.PutAsync("/api/v1/services/tls", Json(Good.Replace("8443", "9443")));
        Assert.Equal(HttpStatusCode.OK, replaced.StatusCode);
        Assert.NotEqual(etag, replaced.Headers.ETag!.Tag);

        Assert.Equal(HttpStatusCode.NoContent, (await api.DeleteAsync("/api/v1/services/tls")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await api.GetAsync("/api/v1/services/tls")).StatusCode);
    }

    [RootFact]
    public async Task AMaglevResizeIsRecordedAndAnEleventhBackendIsNone()
    {
        static string With(int backends) =>
            "{\"vip\": \"198.18.100.21\", \"port\": 7000, \"backends\": [" +
            string.Join(", ", Enumerable.Range(0, backends).Select(i => $"{{\"address\": \"198.18.3.{i + 1}\", \"port\": 7000}}")) + "]}";
        using var api = Api();
        async Task<List<string>> Resizes() => JsonNode.Parse(await api.GetStringAsync("/api/v1/events?kind=config"))!["events"]!.AsArray()
            .Select(e => e!["message"]!.GetValue<string>()).Where(m => m.Contains("Maglev table of grow", StringComparison.Ordinal)).ToList();
        try
        {
            Assert.Equal(HttpStatusCode.Created, (await api.PutAsync("/api/v1/services/grow", Json(With(10)))).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await api.PutAsync("/api/v1/services/grow", Json(With(11)))).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await api.PutAsync("/api/v1/services/grow", Json(With(40)))).StatusCode);
            Assert.Empty(await Resizes());
            Assert.Equal(HttpStatusCode.OK, (await api.PutAsync("/api/v1/services/grow", Json(With(41)))).StatusCode);
            Assert.Contains("the Maglev table of grow was resized from 4093 to 8191 slots (41 backends): new connections are spread afresh, open ones keep their backends",
                await Resizes());
        }
        finally
        {
            await api.DeleteAsync("/api/v1/services/grow");
        }
    }

    public static TheoryData<string, string, string> BadBodies => new()
    {
        { "not json", "{\"vip\": ", "body" },
        { "unknown field", """{"vip": "198.18.100.21", "port": 80, "colour": "blue"}""", "colour" },
        { "bad vip", """{"vip": "198.18.100.999", "port": 80}""", "vip" },
        { "ipv6 vip", """{"vip": "2001:db8::1", "port": 80}""", "vip" },
        { "port 0", """{"vip": "198.18.100.21", "port": 0}""", "port" },
        { "port 65536", """{"vip": "198.18.100.21", "port": 65536}""", "port" },
        { "bad backend address", """{"vip": "198.18.100.21", "port": 80, "backends": [{"address": "backend.example", "port": 80}]}""", "backends[0].address" },
        { "backend port 0", """{"vip": "198.18.100.21", "port": 80, "backends": [{"address": "198.18.2.3", "port": 0}]}""", "backends[0].port" },
        { "backend port 65536", """{"vip": "198.18.100.21", "port": 80, "backends": [{"address": "198.18.2.3", "port": 65536}]}""", "backends[0].port" },
        { "duplicate backends", """{"vip": "198.18.100.21", "port": 80, "backends": [{"address": "198.18.2.3", "port": 80}, {"address": "198.18.2.3", "port": 80}]}""", "backends[1]" },
        { "negative weight", """{"vip": "198.18.100.21", "port": 80, "backends": [{"address": "198.18.2.3", "port": 80, "weight": -1}]}""", "backends[0].weight" },
        { "unknown protocol", """{"vip": "198.18.100.21", "port": 80, "protocol": "sctp"}""", "protocol" },
        { "unknown mode", """{"vip": "198.18.100.21", "port": 80, "mode": "magic"}""", "mode" },
        { "wrong type", """{"vip": "198.18.100.21", "port": "eighty"}""", "port" },
    };

    [RootTheory]
    [MemberData(nameof(BadBodies))]
    public async Task BadInputIsA400NamingTheFieldAndChangesNothing(string what, string body, string field)
    {
        var problem = await Refused(HttpStatusCode.BadRequest, api => api.PutAsync("/api/v1/services/bad", Json(body)));
        Assert.True(problem["errors"]![field] is not null, $"{what}: {problem.ToJsonString()}");
    }

    [RootFact]
    public async Task EveryFieldErrorIsReportedAtOnce()
    {
        var problem = await Refused(HttpStatusCode.BadRequest, api => api.PutAsync("/api/v1/services/bad",
            Json("""{"vip": "x", "port": 0, "protocol": "sctp", "backends": [{"address": "y", "port": 70000, "weight": -2}]}""")));
        var fields = problem["errors"]!.AsObject().Select(e => e.Key).Order().ToArray();
        Assert.Equal(["backends[0].address", "backends[0].port", "backends[0].weight", "port", "protocol", "vip"], fields);
        Assert.Equal("must be 1-65535", problem["errors"]!["backends[0].port"]![0]!.GetValue<string>());
    }

    [RootFact]
    public async Task ABadServiceNameIsA400()
    {
        var problem = await Refused(HttpStatusCode.BadRequest, api => api.PutAsync("/api/v1/services/Not_A_Name", Json(Good)));
        Assert.NotNull(problem["errors"]!["name"]);
    }

    [RootFact]
    public async Task AnOversizedBodyIsA413()
    {
        var huge = Good.Replace("\"tcp\"", "\"tcp\", \"padding\": \"" + new string('x', 100_000) + "\"");
        await Refused(HttpStatusCode.RequestEntityTooLarge, api => api.PutAsync("/api/v1/services/huge", Json(huge)));
    }

    [RootFact]
    public async Task IfMatchIsHonoured()
    {
        using var api = Api();
        var created = await api.PutAsync("/api/v1/services/guarded", Json(GoodOn(444)));
        var etag = created.Headers.ETag!.Tag;

        await Refused(HttpStatusCode.PreconditionFailed, client =>
        {
            var request = new HttpRequestMessage(HttpMethod.Put, "/api/v1/services/guarded") { Content = Json(GoodOn(445)) };
            request.Headers.IfMatch.Add(new EntityTagHeaderValue("\"0000000000000000\""));
            return client.SendAsync(request);
        });
        await Refused(HttpStatusCode.PreconditionFailed, client =>
        {
            var request = new HttpRequestMessage(HttpMethod.Delete, "/api/v1/services/guarded");
            request.Headers.IfMatch.Add(new EntityTagHeaderValue("\"0000000000000000\""));
            return client.SendAsync(request);
        });

        var matching = new HttpRequestMessage(HttpMethod.Put, "/api/v1/services/guarded") { Content = Json(GoodOn(446)) };
        matching.Headers.IfMatch.Add(new EntityTagHeaderValue(etag));
        Assert.Equal(HttpStatusCode.OK, (await api.SendAsync(matching)).StatusCode);
        await api.DeleteAsync("/api/v1/services/guarded");
    }

    [RootFact]
    public async Task UnknownServicesAre404()
    {
        await Refused(HttpStatusCode.NotFound, api => api.GetAsync("/api/v1/services/nothing"));
        await Refused(HttpStatusCode.NotFound, api => api.DeleteAsync("/api/v1/services/nothing"));
        await Refused(HttpStatusCode.NotFound, api => api.PutAsync("/api/v1/services/nothing/backends/198.18.2.3:80", Json("{}")));
        await Refused(HttpStatusCode.NotFound, api => api.DeleteAsync("/api/v1/services/web/backends/198.18.2.99:80"));
    }

    [RootFact]
    public async Task ConflictsAre409()
    {
        // web belongs to the config file: the API may not change or delete it...
        await Refused(HttpStatusCode.Conflict, api => api.PutAsync("/api/v1/services/web", Json(Good)));
        await Refused(HttpStatusCode.Conflict, api => api.DeleteAsync("/api/v1/services/web"));
        await Refused(HttpStatusCode.Conflict, api => api.PutAsync("/api/v1/services/web/backends/198.18.2.3:80", Json("{}")));
        // ...nor claim its VIP:port under another name.
        var problem = await Refused(HttpStatusCode.Conflict, api => api.PutAsync("/api/v1/services/thief",
            Json("""{"vip": "198.18.100.10", "port": 80, "backends": []}""")));
        Assert.Contains("web", problem["detail"]!.GetValue<string>());
    }

    [RootFact]
    public async Task DryRunSaysWhatWouldChangeAndChangesNothing()
    {
        var before = await ServiceList();
        using var api = Api();
        var response = await api.PutAsync("/api/v1/services/maybe?dryRun=true", Json(GoodOn(447)));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var result = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal("created", result["change"]!.GetValue<string>());
        Assert.Equal(before, await ServiceList());
        Assert.Equal(HttpStatusCode.NotFound, (await api.GetAsync("/api/v1/services/maybe")).StatusCode);
        // A dry run validates like the real thing.
        await Refused(HttpStatusCode.BadRequest, client => client.PutAsync("/api/v1/services/maybe?dryRun=true", Json("""{"vip": "x", "port": 80}""")));
    }

    [RootFact]
    public async Task BackendsAreAddedChangedDrainedAndRemovedOneByOne()
    {
        using var api = Api();
        Assert.Equal(HttpStatusCode.Created, (await api.PutAsync("/api/v1/services/pool", Json(GoodOn(448)))).StatusCode);
        // Refusals first: once a backend drains, the drain monitor may finish it at any moment.
        await Refused(HttpStatusCode.BadRequest, client => client.PutAsync("/api/v1/services/pool/backends/198.18.2.4:8443", Json("""{"weight": -5}""")));
        await Refused(HttpStatusCode.BadRequest, client => client.PutAsync("/api/v1/services/pool/backends/not-a-backend", Json("{}")));
        Assert.Equal(HttpStatusCode.OK, (await api.PutAsync("/api/v1/services/pool/backends/198.18.2.4:8443", Json("""{"weight": 3}"""))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await api.PutAsync("/api/v1/services/pool/backends/198.18.2.3:8443", Json("""{"state": "draining"}"""))).StatusCode);
        var view = JsonNode.Parse(await api.GetStringAsync("/api/v1/services/pool"))!;
        var backends = view["spec"]!["backends"]!.AsArray();
        Assert.Equal(2, backends.Count);
        Assert.Equal("draining", backends[0]!["state"]!.GetValue<string>());
        Assert.Equal(3, backends[1]!["weight"]!.GetValue<int>());


        Assert.Equal(HttpStatusCode.NoContent, (await api.DeleteAsync("/api/v1/services/pool/backends/198.18.2.3:8443")).StatusCode);
        view = JsonNode.Parse(await api.GetStringAsync("/api/v1/services/pool"))!;
        Assert.Single(view["spec"]!["backends"]!.AsArray());
        await api.DeleteAsync("/api/v1/services/pool");
    }

    [RootFact]
    public async Task StatusSaysWhereAndHowTheDatapathRuns()
    {
        using var api = Api();
        var status = JsonNode.Parse(await api.GetStringAsync("/api/v1/status"))!;
        Assert.True(status["datapath"]!["healthy"]!.GetValue<bool>());
        var attached = status["datapath"]!["interfaces"]![0]!;
        Assert.Equal("a0", attached["name"]!.GetValue<string>());
        Assert.Equal("native", attached["mode"]!.GetValue<string>());
        Assert.True(attached["ours"]!.GetValue<bool>());
    }

    [RootFact]
    public async Task TheOpenApiDocumentDescribesTheRoutes()
    {
        using var anonymous = fixture.Daemon.Client(authenticated: false);
        var document = JsonNode.Parse(await anonymous.GetStringAsync("/openapi/v1.json"))!;
        var paths = document["paths"]!.AsObject().Select(p => p.Key).ToList();
        Assert.Contains("/api/v1/services", paths);
        Assert.Contains("/api/v1/services/{name}", paths);
        Assert.Contains("/api/v1/services/{name}/backends/{backend}", paths);
        Assert.Contains("/api/v1/status", paths);
    }
}
