/**
 * Prompt-injection rules as data, run with re2js (RE2: linear time, so no rule and no
 * input can stall the request path). `high` rules are phrasings that have no ordinary
 * reading in content an agent receives (override the instructions, fake chat-template
 * delimiters, send the secrets somewhere); `medium` ones are suspicious on their own and
 * make a finding of high confidence only when two of them, or a high one, match.
 * Measured on the labelled set (`corpus/injection.corpus.ts`): the benchmark prints the
 * true- and false-positive rates.
 */
export interface InjectionRule {
  id: string;
  /** RE2 syntax. */
  regex: string;
  severity: 'high' | 'medium';
  /** Lower-case substrings one of which must occur for the rule to run (a cheap pre-filter, as gitleaks does). */
  keywords: readonly string[];
  /**
   * Further groups of lower-case substrings, one of each group also needed: literals every
   * match of the regex contains (so skipping the rule without them changes no finding), for
   * rules whose keywords are common words. re2js costs about 1 ms per 4 KB; this keeps it
   * off ordinary text.
   */
  alsoNeeds?: readonly (readonly string[])[];
}

const K_IGNORE = ['ignore', 'disregard', 'forget', 'override', 'bypass', 'skip', 'drop', 'abandon'];

const VERBS_IGNORE = '(?:ignore|disregard|forget|override|bypass|skip|drop|abandon)';
const EARLIER = '(?:previous|prior|above|earlier|preceding|foregoing|initial|original|system|developer|existing|current)';
const ORDERS = '(?:instructions?|prompts?|rules|directions|directives|guidelines|guardrails|constraints|orders|commands|programming|policies)';
/** What every match of EARLIER and ORDERS contains (see `alsoNeeds`). */
const A_EARLIER = ['previous', 'prior', 'above', 'earlier', 'preceding', 'foregoing', 'initial', 'original', 'system', 'developer', 'existing', 'current'];
const A_ORDERS = ['instruction', 'prompt', 'rules', 'directions', 'directives', 'guidelines', 'guardrails', 'constraints', 'orders', 'commands', 'programming', 'policies'];
const SECRETS = '(?:api[ _-]?keys?|credentials|passwords?|secrets?|tokens?|the conversation|(?:the )?chat history|(?:the |your )?system prompt|environment variables|env vars|private keys?|ssh keys?)';

export const INJECTION_RULES: readonly InjectionRule[] = [
  { id: 'ignore-instructions', keywords: K_IGNORE, alsoNeeds: [A_EARLIER, A_ORDERS], severity: 'high', regex: `(?i)\\b${VERBS_IGNORE}\\b[^.\\n]{0,24}?\\b(?:all|any|every|the|your|these|those)?\\s*${EARLIER}\\s+(?:\\w+\\s+){0,2}?${ORDERS}\\b` },
  { id: 'ignore-everything-above', keywords: K_IGNORE, alsoNeeds: [['everything', 'all'], ['above', 'before', 'told']], severity: 'high', regex: `(?i)\\b${VERBS_IGNORE}\\s+(?:everything|all(?: of)?(?: that| the text)?)\\s+(?:above|before|you (?:were|have been) told)` },
  { id: 'new-instructions', keywords: ['instructions', 'directives', 'orders'], alsoNeeds: [['new', 'updated', 'real', 'actual', 'true', 'revised'], [':', '：']], severity: 'high', regex: '(?i)\\b(?:new|updated|real|actual|true|revised)\\s+(?:system\\s+)?(?:instructions|directives|orders)\\s*(?:for (?:the )?(?:ai|assistant|model|agent|llm))?\\s*[:：]' },
  { id: 'reveal-system-prompt', keywords: ['prompt', 'instructions', 'message'], alsoNeeds: [['reveal', 'print', 'show', 'repeat', 'output', 'leak', 'dump', 'display', 'tell me', 'give me', 'recite', 'write out'], ['system', 'hidden', 'initial', 'secret', 'developer', 'original']], severity: 'high', regex: '(?i)\\b(?:reveal|print|show|repeat|output|leak|dump|display|tell me|give me|recite|write out)\\b[^.\\n]{0,30}?\\b(?:your|the)\\s+(?:full\\s+|exact\\s+|entire\\s+)?(?:system|hidden|initial|secret|developer|original)\\s+(?:prompt|instructions|message)' },
  { id: 'role-override', keywords: ['you are now', 'you are no longer'], severity: 'high', regex: '(?i)\\byou are (?:now|no longer)\\b[^.\\n]{0,40}?\\b(?:DAN|unrestricted|jailbroken|unfiltered|uncensored|free of|bound by|an? (?:ai|assistant) (?:with|without))' },
  { id: 'mode-switch', keywords: [' mode'], alsoNeeds: [['enabled', 'activated', 'engaged', 'unlocked']], severity: 'high', regex: '(?i)\\b(?:developer|god|jailbreak|dan|admin|debug|sudo|unrestricted)\\s+mode\\b[^.\\n]{0,20}?\\b(?:enabled|activated|engaged|unlocked)\\b' },
  { id: 'chat-template-delimiter', keywords: ['<|', '[inst', '[/inst', '<<sys', '<sys', '</sys', 'system', 'assistant'], severity: 'high', regex: '(?i)(?:<\\|im_start\\|>|<\\|im_end\\|>|<\\|(?:system|assistant|user)\\|>|<\\|begin_of_text\\|>|<\\|start_header_id\\|>|\\[/?INST\\]|<<SYS>>|</?(?:system|sys)>|\\n\\s*(?:system|assistant)\\s*:\\s*(?:ignore|you are|new))' },
  { id: 'exfiltrate-secrets', keywords: ['key', 'credential', 'password', 'secret', 'token', 'conversation', 'history', 'prompt', 'environment', 'env var'], alsoNeeds: [['send', 'post', 'forward', 'upload', 'exfiltrate', 'mail', 'transmit', 'leak', 'copy', 'paste', 'include'], ['http', '@', 'webhook', 'pastebin', 'url', 'link', 'endpoint']], severity: 'high', regex: `(?i)\\b(?:send|post|forward|upload|exfiltrate|e-?mail|transmit|leak|copy|paste|include)\\b[^.\\n]{0,40}?\\b${SECRETS}\\b[^.\\n]{0,40}?\\b(?:to|at|into|in)\\b[^.\\n]{0,30}?(?:https?://|[\\w.+-]+@[\\w-]+\\.[\\w.]+|webhook|pastebin|the (?:url|link|endpoint))` },
  { id: 'markdown-exfiltration', keywords: ['](http'], severity: 'high', regex: '(?i)!\\[[^\\]\\n]{0,100}\\]\\(https?://[^)\\s]{1,200}[?&][A-Za-z_]{1,30}=(?:\\{|%7B|\\$\\{|<)[^)\\s]{0,100}\\)' },
  { id: 'hidden-action', keywords: ['without', 'before'], alsoNeeds: [['call', 'invoke', 'run', 'execute', 'use', 'trigger'], ['tool', 'function', 'command']], severity: 'high', regex: '(?i)\\b(?:call|invoke|run|execute|use|trigger)\\s+(?:the\\s+)?(?:\\w+\\s+)?(?:tool|function|command)\\b[^.\\n]{0,60}?\\b(?:without|before)\\s+(?:asking|telling|informing|notifying|confirming|the user)' },
  { id: 'do-not-tell-user', keywords: ['do not', "don't", 'never', 'must not'], alsoNeeds: [['tell', 'inform', 'mention', 'reveal', 'alert', 'notify', 'show'], ['user', 'human', 'operator']], severity: 'medium', regex: '(?i)\\b(?:do not|don\'t|never|must not)\\s+(?:tell|inform|mention|reveal|alert|notify|show)\\s+(?:this\\s+|it\\s+|anything\\s+)?(?:to\\s+)?(?:the\\s+)?(?:user|human|operator)\\b' },
  { id: 'addressed-to-the-model', keywords: ['important', 'attention', 'note', 'urgent', 'reading this', 'processing this', 'summarizing this', 'summarising this'], severity: 'medium', regex: '(?i)(?:\\b(?:important|attention|note|urgent)\\s*[:!]+\\s*(?:to\\s+)?(?:the\\s+)?(?:ai|assistant|model|llm|agent|chatbot)\\b|\\b(?:ai|llm|assistant|language model)s?\\s+(?:reading|processing|summari[sz]ing)\\s+this\\b)' },
  { id: 'from-now-on', keywords: ['from now on'], alsoNeeds: [['you']], severity: 'medium', regex: '(?i)\\bfrom now on\\b[^.\\n]{0,30}?\\byou\\s+(?:will|must|shall|are to|should)\\b' },
  { id: 'pretend-persona', keywords: ['pretend', 'act as', 'roleplay as'], severity: 'medium', regex: '(?i)\\b(?:pretend (?:you are|that you are|to be an? (?:ai|assistant|model)\\b)|act as (?:an? )?(?:unrestricted|unfiltered|evil|uncensored)|roleplay as (?:an? )?(?:unrestricted|evil))\\b' },
  { id: 'instead-do', keywords: ['instead', 'rather'], alsoNeeds: [['you must', 'you should', 'you will', 'your ']], severity: 'medium', regex: '(?i)\\b(?:instead|rather)\\b[^.\\n]{0,20}?\\b(?:you (?:must|should|will)|your (?:new )?(?:task|job|goal) is)\\b' },
  { id: 'encoded-payload', keywords: ['decode', 'base64', 'rot13'], alsoNeeds: [['follow', 'execute', 'run', 'obey']], severity: 'medium', regex: '(?i)\\b(?:decode|base64[ -]?decode|rot13)\\b[^.\\n]{0,40}?\\b(?:and|then)\\s+(?:follow|execute|run|obey)\\b' },
];
