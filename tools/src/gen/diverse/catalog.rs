//! The diverse profile's world, as data and the rules that expand it: 40
//! services and their resource nouns, the 293 APIs in Zipf rank order with
//! their parameters, regions, pool sizes, words for names, and 600 user
//! agents.

use crate::gen::rng::{ident_hash, mix, Rng, Weighted};

/// (eventSource prefix, resource nouns, CloudFormation type prefix).
pub(super) const SERVICES: [(&str, &[&str], &str); 40] = [
    (
        "ec2",
        &["Instances", "Volumes", "Snapshots", "SecurityGroups", "Vpcs", "Subnets", "NetworkInterfaces", "Images", "LaunchTemplates"],
        "AWS::EC2::",
    ),
    ("s3", &["Bucket", "BucketPolicy", "BucketAcl", "BucketTagging", "BucketEncryption", "BucketLifecycle"], "AWS::S3::"),
    ("iam", &["Role", "User", "Policy", "RolePolicy", "AccessKey", "InstanceProfile", "Group"], "AWS::IAM::"),
    ("sts", &["SessionToken", "FederationToken"], "AWS::STS::"),
    ("kms", &["Key", "Alias", "KeyPolicy", "Grant"], "AWS::KMS::"),
    ("lambda", &["Function", "FunctionConfiguration", "Alias", "EventSourceMapping", "Layer"], "AWS::Lambda::"),
    ("dynamodb", &["Table", "Backup", "GlobalTable", "TimeToLive"], "AWS::DynamoDB::"),
    ("rds", &["DBInstances", "DBClusters", "DBSnapshots", "DBParameterGroups", "DBSubnetGroups"], "AWS::RDS::"),
    ("monitoring", &["Alarms", "MetricData", "Dashboards", "AnomalyDetectors"], "AWS::CloudWatch::"),
    ("logs", &["LogGroups", "LogStreams", "SubscriptionFilters", "MetricFilters", "RetentionPolicy"], "AWS::Logs::"),
    ("sns", &["Topic", "Subscription", "TopicAttributes"], "AWS::SNS::"),
    ("sqs", &["Queue", "QueueAttributes", "QueueUrl"], "AWS::SQS::"),
    ("ecs", &["Services", "Tasks", "TaskDefinition", "Clusters", "ContainerInstances"], "AWS::ECS::"),
    ("eks", &["Cluster", "Nodegroup", "Addon", "FargateProfile"], "AWS::EKS::"),
    ("ecr", &["Repositories", "Images", "LifecyclePolicy", "AuthorizationToken"], "AWS::ECR::"),
    ("cloudformation", &["Stacks", "StackResources", "ChangeSet", "StackEvents", "Template"], "AWS::CloudFormation::"),
    ("ssm", &["Parameter", "Parameters", "Document", "InstanceInformation", "Session"], "AWS::SSM::"),
    ("secretsmanager", &["Secret", "SecretValue", "ResourcePolicy"], "AWS::SecretsManager::"),
    ("elasticloadbalancing", &["LoadBalancers", "TargetGroups", "TargetHealth", "Listeners", "Rules"], "AWS::ElasticLoadBalancingV2::"),
    ("autoscaling", &["AutoScalingGroups", "ScalingActivities", "LaunchConfigurations", "Policies"], "AWS::AutoScaling::"),
    ("route53", &["HostedZones", "ResourceRecordSets", "HealthChecks"], "AWS::Route53::"),
    ("cloudfront", &["Distribution", "Invalidation", "CachePolicy"], "AWS::CloudFront::"),
    ("apigateway", &["RestApis", "Stages", "Deployments", "Resources"], "AWS::ApiGateway::"),
    ("states", &["StateMachine", "Execution", "Activity"], "AWS::StepFunctions::"),
    ("events", &["Rule", "Targets", "EventBus"], "AWS::Events::"),
    ("glue", &["Tables", "Databases", "Crawler", "Job", "Partitions"], "AWS::Glue::"),
    ("athena", &["QueryExecution", "WorkGroup", "NamedQuery"], "AWS::Athena::"),
    ("kinesis", &["Stream", "StreamSummary", "Shards"], "AWS::Kinesis::"),
    ("firehose", &["DeliveryStream", "Destination"], "AWS::KinesisFirehose::"),
    ("config", &["ConfigRules", "ComplianceByConfigRule", "ConfigurationRecorders", "Evaluations"], "AWS::Config::"),
    ("guardduty", &["Findings", "Detector", "Filter"], "AWS::GuardDuty::"),
    ("securityhub", &["Findings", "Standards", "Insights"], "AWS::SecurityHub::"),
    ("organizations", &["Accounts", "OrganizationalUnits", "Policies"], "AWS::Organizations::"),
    ("sso", &["PermissionSets", "AccountAssignments", "Instances"], "AWS::SSO::"),
    ("codebuild", &["Projects", "Builds", "ReportGroups"], "AWS::CodeBuild::"),
    ("codepipeline", &["Pipeline", "PipelineExecution", "PipelineState"], "AWS::CodePipeline::"),
    ("backup", &["BackupPlans", "BackupJobs", "RecoveryPoints"], "AWS::Backup::"),
    ("elasticfilesystem", &["FileSystems", "MountTargets", "AccessPoints"], "AWS::EFS::"),
    ("acm", &["Certificate", "Certificates"], "AWS::CertificateManager::"),
    ("wafv2", &["WebACL", "IPSet", "RuleGroup"], "AWS::WAFv2::"),
];

/// The busiest APIs of real trails, in rank order: (service index, name,
/// read-only).
const HEAD: [(usize, &str, bool); 14] = [
    (3, "AssumeRole", true),
    (4, "Decrypt", true),
    (4, "GenerateDataKey", true),
    (3, "GetCallerIdentity", true),
    (0, "DescribeInstances", true),
    (16, "GetParameter", true),
    (17, "GetSecretValue", true),
    (9, "DescribeLogStreams", true),
    (1, "ListBuckets", true),
    (8, "PutMetricData", false),
    (3, "AssumeRoleWithWebIdentity", true),
    (19, "DescribeAutoScalingGroups", true),
    (18, "DescribeTargetHealth", true),
    (12, "DescribeServices", true),
];

pub(super) const API_COUNT: usize = 293;
const READ_VERBS: [&str; 3] = ["Describe", "Get", "List"];
const WRITE_VERBS: [&str; 9] = ["Create", "Delete", "Update", "Put", "Modify", "Tag", "Untag", "Start", "Stop"];

/// What a request parameter's value looks like.
#[derive(Clone, Copy)]
pub(super) enum Param {
    Id(&'static str),
    Name,
    Path,
    Int(u64),
    Bool,
    Filter,
    Tags,
    RoleArn,
    Token,
}

pub(super) const PARAM_KEYS: [(&str, Param); 18] = [
    ("instanceId", Param::Id("i-")),
    ("volumeId", Param::Id("vol-")),
    ("groupId", Param::Id("sg-")),
    ("subnetId", Param::Id("subnet-")),
    ("resourceId", Param::Id("r-")),
    ("name", Param::Name),
    ("functionName", Param::Name),
    ("bucketName", Param::Name),
    ("tableName", Param::Name),
    ("key", Param::Path),
    ("logGroupName", Param::Path),
    ("maxResults", Param::Int(1000)),
    ("limit", Param::Int(100)),
    ("dryRun", Param::Bool),
    ("filterSet", Param::Filter),
    ("tagSpecificationSet", Param::Tags),
    ("roleArn", Param::RoleArn),
    ("nextToken", Param::Token),
];

pub(super) struct Api {
    pub(super) svc: usize,
    pub(super) name: String,
    pub(super) read_only: bool,
    /// Indexes into PARAM_KEYS (empty: requestParameters null).
    pub(super) params: Vec<usize>,
    pub(super) resources: bool,
}

/// The 293 APIs, in Zipf rank order (the same for every seed).
pub(super) fn apis() -> Vec<Api> {
    let mut out: Vec<Api> =
        HEAD.iter().map(|&(svc, name, ro)| Api { svc, name: name.into(), read_only: ro, params: Vec::new(), resources: false }).collect();
    let mut round = 0;
    while out.len() < API_COUNT {
        for (svc, (_, nouns, _)) in SERVICES.iter().enumerate() {
            let noun = nouns[round % nouns.len()];
            let k = round / nouns.len();
            let (verb, ro) =
                if round % 3 == 0 { (READ_VERBS[k % 3], true) } else { (WRITE_VERBS[(round + svc) % WRITE_VERBS.len()], false) };
            let name = format!("{verb}{noun}");
            if out.len() < API_COUNT && !out.iter().any(|a| a.name == name && a.svc == svc) {
                out.push(Api { svc, name, read_only: ro, params: Vec::new(), resources: false });
            }
        }
        round += 1;
    }
    // Scatter the generated tail over the ranks (a fixed permutation), so
    // that no service owns a block of neighbouring ranks.
    let mut rng = Rng(mix(0xD1CE_0293));
    for i in (HEAD.len() + 1..out.len()).rev() {
        let j = HEAD.len() + rng.below((i - HEAD.len() + 1) as u64) as usize;
        out.swap(i, j);
    }
    for a in &mut out {
        let h = mix(ident_hash(a.svc, &a.name));
        // One API in ten takes no parameters (null); the rest 2 to 4.
        let n = if h.is_multiple_of(10) { 0 } else { 2 + (h >> 4) as usize % 3 };
        a.params = (0..n).map(|i| ((h >> (8 + 5 * i)) % PARAM_KEYS.len() as u64) as usize).collect();
        a.params.sort_unstable();
        a.params.dedup();
        a.resources = (h >> 40) % 100 < 62;
    }
    out
}

/// Zipf weights for ranks 1..=n with s = 1 + 1/16: `1e8 / (r · r^(1/16))`,
/// the 16th root by four square roots (exactly rounded everywhere). Their
/// sum (~5.5e8 for 293 ranks) must fit `Weighted`'s u32 total.
pub(super) fn zipf(n: usize) -> Weighted {
    Weighted::new((0..n).map(|i| {
        let r = (i + 1) as f64;
        let root16 = r.sqrt().sqrt().sqrt().sqrt();
        (i, (1e8 / (r * root16)).max(1.0) as u32)
    }))
}

pub(super) const REGIONS: [&str; 17] = [
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-south-1",
    "ca-central-1",
    "sa-east-1",
    "me-south-1",
];
pub(super) const ACCOUNTS: usize = 12;
pub(super) const ROLES: usize = 150;
pub(super) const USERS: usize = 80;
pub(super) const AGENTS: usize = 600;
pub(super) const ADDRESSES: usize = 3_000;
pub(super) const NAT_ADDRESSES: usize = 40;
pub(super) const ACTIVE: usize = 48;
pub(super) const WORDS: [&str; 24] = [
    "orders",
    "billing",
    "search",
    "ingest",
    "reports",
    "users",
    "auth",
    "payments",
    "catalog",
    "inventory",
    "notify",
    "media",
    "events",
    "audit",
    "metrics",
    "gateway",
    "export",
    "import",
    "backup",
    "analytics",
    "fraud",
    "ledger",
    "checkout",
    "profile",
];
pub(super) const ENVS: [&str; 4] = ["prod", "staging", "dev", "sandbox"];
pub(super) const INVOKERS: [&str; 8] = [
    "ec2.amazonaws.com",
    "lambda.amazonaws.com",
    "autoscaling.amazonaws.com",
    "cloudformation.amazonaws.com",
    "config.amazonaws.com",
    "elasticloadbalancing.amazonaws.com",
    "ecs-tasks.amazonaws.com",
    "ssm.amazonaws.com",
];
pub(super) const ERRORS: [(&str, &str); 6] = [
    ("AccessDenied", "User is not authorized to perform this operation"),
    ("ResourceNotFoundException", "The requested resource was not found"),
    ("ThrottlingException", "Rate exceeded"),
    ("ValidationException", "1 validation error detected"),
    ("Client.UnauthorizedOperation", "You are not authorized to perform this operation."),
    ("NoSuchEntity", "The entity cannot be found."),
];

/// 600 user agents: SDKs, the CLI and tools at many versions, skew-picked.
pub(super) fn agents() -> Vec<String> {
    let mut rng = Rng(mix(0xA6E7));
    (0..AGENTS)
        .map(|_| {
            let v = |rng: &mut Rng, a: u64, b: u64| format!("{}.{}.{}", a, rng.below(b), rng.below(40));
            match rng.below(7) {
                0 => format!(
                    "aws-cli/{} Python/3.{}.{} Linux/5.{}.0-{}-aws exe/x86_64.amzn.2 prompt/off command/{}",
                    v(&mut rng, 2, 20),
                    9 + rng.below(4),
                    rng.below(15),
                    4 + rng.below(12),
                    1000 + rng.below(200),
                    ["ec2.describe-instances", "s3.ls", "sts.get-caller-identity", "logs.tail"][rng.below(4) as usize]
                ),
                1 => format!(
                    "Boto3/{} md/Botocore#{} ua/2.0 os/linux#5.10.{}-{}.amzn2.x86_64 md/arch#x86_64 lang/python#3.{}.{}",
                    v(&mut rng, 1, 36),
                    v(&mut rng, 1, 36),
                    rng.below(230),
                    200 + rng.below(40),
                    9 + rng.below(4),
                    rng.below(15)
                ),
                2 => format!(
                    "aws-sdk-java/{} Linux/5.10.{}-{}.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/{}.0.{} java/{} vendor/Amazon.com_Inc.",
                    v(&mut rng, 2, 26),
                    rng.below(230),
                    rng.below(300),
                    11 + rng.below(11),
                    rng.below(25),
                    11 + rng.below(11)
                ),
                3 => format!(
                    "aws-sdk-go-v2/{} os/linux lang/go#1.{}.{} md/GOOS#linux md/GOARCH#amd64 api/{}#{}",
                    v(&mut rng, 1, 32),
                    20 + rng.below(4),
                    rng.below(12),
                    WORDS[rng.below(24) as usize],
                    v(&mut rng, 1, 60)
                ),
                4 => format!(
                    "aws-sdk-js/{} ua/2.1 os/linux#5.10 lang/js md/nodejs#{}.{}.0 api/{}#{}",
                    v(&mut rng, 3, 600),
                    16 + rng.below(6),
                    rng.below(20),
                    WORDS[rng.below(24) as usize],
                    v(&mut rng, 3, 600)
                ),
                5 => format!(
                    "APN/1.0 HashiCorp/1.0 Terraform/1.{}.{} (+https://www.terraform.io) terraform-provider-aws/5.{}.0",
                    rng.below(10),
                    rng.below(8),
                    rng.below(60)
                ),
                _ => format!(
                    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{}.0.0.0 Safari/537.36",
                    110 + rng.below(30)
                ),
            }
        })
        .collect()
}
