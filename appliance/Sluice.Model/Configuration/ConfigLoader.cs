using System.Reflection;
using Sluice.Model.Validation;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Sluice.Model.Configuration;

public sealed record ConfigResult(SluiceConfig? Config, IReadOnlyList<ValidationError> Errors)
{
    public bool IsValid => Config is not null && Errors.Count == 0;
}

/// <summary>
/// Reads the YAML config (JSON is valid YAML). Unknown keys are reported with their
/// path, all of them; then every semantic error at once. A file that does not parse
/// gives one error with its line and column.
/// </summary>
public static class ConfigLoader
{
    private static readonly IDeserializer Deserializer = new DeserializerBuilder()
        .WithNamingConvention(CamelCaseNamingConvention.Instance)
        .IgnoreUnmatchedProperties() // unknown keys are found by UnknownKeys first
        .Build();

    // The fast path: one parse, stopping at the first unknown key; only then is the file
    // walked again to name every unknown key (parsing is most of the cost of a big file).
    private static readonly IDeserializer StrictDeserializer = new DeserializerBuilder()
        .WithNamingConvention(CamelCaseNamingConvention.Instance)
        .Build();

    public static ConfigResult Load(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return new(null, [new ValidationError(path, $"cannot be read: {ex.Message}")]);
        }
        return Parse(text);
    }

    public static ConfigResult Parse(string text)
    {
        var errors = new ValidationErrors();
        SluiceConfig? config;
        try
        {
            try
            {
                config = StrictDeserializer.Deserialize<SluiceConfig?>(text) ?? new SluiceConfig();
            }
            catch (YamlException)
            {
                // An unknown key, or a real syntax error: the full walk names every unknown key;
                // if there is none, the lenient parse below reports the syntax error.
                var stream = new YamlStream();
                stream.Load(new StringReader(text));
                if (stream.Documents.Count > 0)
                {
                    UnknownKeys(stream.Documents[0].RootNode, typeof(SluiceConfig), "", errors);
                }
                if (errors.Any)
                {
                    return new(null, errors.All);
                }
                config = Deserializer.Deserialize<SluiceConfig?>(text) ?? new SluiceConfig();
            }
        }
        catch (YamlException ex)
        {
            var message = ex.InnerException?.Message ?? ex.Message;
            return new(null, [new ValidationError($"line {ex.Start.Line}, column {ex.Start.Column}", message)]);
        }
        catch (InvalidOperationException ex)
        {
            // YamlDotNet's scanner throws this, without a position, for some unclosed [ or {.
            return new(null, [new ValidationError("(file)", $"is not valid YAML (an unclosed [ or {{?): {ex.Message}")]);
        }
        ConfigValidator.Validate(config, errors);
        return new(errors.Any ? null : config, errors.All);
    }

    /// <summary>The file <c>sluicectl service apply -f</c> takes: <c>services:</c> as in the config file.</summary>
    public sealed record ServicesFile
    {
        public Dictionary<string, Services.ServiceDefinition> Services { get; init; } = [];
    }

    public static (IReadOnlyDictionary<string, Services.ServiceDefinition>? Services, IReadOnlyList<ValidationError> Errors) ParseServices(string text)
    {
        var errors = new ValidationErrors();
        try
        {
            var stream = new YamlStream();
            stream.Load(new StringReader(text));
            if (stream.Documents.Count > 0)
            {
                UnknownKeys(stream.Documents[0].RootNode, typeof(ServicesFile), "", errors);
            }
            if (errors.Any)
            {
                return (null, errors.All);
            }
            var file = Deserializer.Deserialize<ServicesFile?>(text) ?? new ServicesFile();
            foreach (var (name, service) in file.Services)
            {
                Services.ServiceValidator.ValidateName(name, $"services.{name}", errors);
                if (service is null) errors.Add($"services.{name}", "must be a service object");
                else Services.ServiceValidator.Validate(service, $"services.{name}", errors);
            }
            return errors.Any ? (null, errors.All) : (file.Services, []);
        }
        catch (YamlException ex)
        {
            return (null, [new ValidationError($"line {ex.Start.Line}, column {ex.Start.Column}", ex.InnerException?.Message ?? ex.Message)]);
        }
        catch (InvalidOperationException ex)
        {
            return (null, [new ValidationError("(file)", $"is not valid YAML: {ex.Message}")]);
        }
    }

    // Reflection once per type, not once per node: a file with 10,000 services has 100,000s.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<Type, Dictionary<string, Type>> KeysOf = new();

    /// <summary>Walks the YAML tree against the config types and reports keys no type declares.</summary>
    private static void UnknownKeys(YamlNode node, Type type, string path, ValidationErrors errors)
    {
        if (node is YamlMappingNode mapping)
        {
            if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(Dictionary<,>))
            {
                var valueType = type.GetGenericArguments()[1];
                foreach (var (key, value) in mapping.Children)
                {
                    UnknownKeys(value, valueType, ValidationErrors.Join(path, key.ToString()), errors);
                }
                return;
            }
            var properties = KeysOf.GetOrAdd(type, t => t.GetProperties(BindingFlags.Public | BindingFlags.Instance)
                .ToDictionary(p => CamelCaseNamingConvention.Instance.Apply(p.Name), p => p.PropertyType));
            foreach (var (key, value) in mapping.Children)
            {
                var name = key.ToString();
                var keyPath = ValidationErrors.Join(path, name);
                if (!properties.TryGetValue(name, out var propertyType))
                {
                    errors.Add(keyPath, $"unknown key (known here: {string.Join(", ", properties.Keys.Order())})");
                    continue;
                }
                UnknownKeys(value, Nullable.GetUnderlyingType(propertyType) ?? propertyType, keyPath, errors);
            }
        }
        else if (node is YamlSequenceNode sequence && type.IsGenericType && type.GetGenericTypeDefinition() == typeof(List<>))
        {
            var itemType = type.GetGenericArguments()[0];
            var index = 0;
            foreach (var item in sequence.Children)
            {
                UnknownKeys(item, itemType, $"{path}[{index++}]", errors);
            }
        }
    }
}
